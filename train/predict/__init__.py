"""``train-ssl predict``: depth, normals and contours of the exported property heads on any photos.

- `images`: which files are read, and how any file becomes uint8 RGB (grayscale,
  RGBA, 16-bit) or is skipped when unreadable;
- `feed`: how a photo of any size is fed (shorter side resized to ``size``, padded to
  a multiple of the backbone's stride, predictions cropped back);
- `model`: `Predictor`, the exported backbone + decoder, turning raw outputs into
  relative depth, unit normals and contour probabilities;
- `maps`: the PNG renderings (depth with a colour bar, normals, contours) and the
  contact sheet;
- `zero_shot`: the heads scored on real depth ground truth (`synthssl.train.eval.middlebury`,
  `synthssl.train.eval.castel`);
- `cli`: the command.
"""
