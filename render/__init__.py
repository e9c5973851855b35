"""synthssl.render: procedural 3D scenes rendered into view-pair shards (``render-scenes``).

Modules (scene description, assets and renderer are separate, as in Kubric):
``config`` (RenderConfig), ``shapes`` / ``assets`` (meshes and their categories),
``textures`` / ``appearance`` (materials, lights), ``physics`` (pybullet settling),
``scene`` (the GL-free scene description), ``cameras`` (view sampling, OpenCV
convention), ``gl_compat`` (every pyrender/PyOpenGL workaround), ``mesh_buffers`` /
``renderer`` (id + colour passes, exact maps), ``scene_maps`` (one scene -> shard dict),
``pipeline`` (shards, workers, resume), ``preview`` (contact sheet), ``cli``.
Nothing here imports torch; pyrender is imported only through ``gl_compat``.
"""
