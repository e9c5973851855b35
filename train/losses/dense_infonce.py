"""Multi-positive InfoNCE: each query has a *set* of positive keys.

For query q with positive set P(q) among the allowed keys A(q),

    loss(q) = - 1/|P(q)| * sum_{p in P(q)} log( exp(s_qp / t) / sum_{a in A(q)} exp(s_qa / t) )
            = logsumexp_{a in A(q)}(s_qa / t) - mean_{p in P(q)} s_qp / t

with s = cosine similarity (the "L_out" form of supervised contrast, Khosla et al. 2020;
with one positive it is plain InfoNCE). Used by the pixel level (neighbours in the other
view are positives, every other sampled location of the batch a negative) and the
semantic level (same pseudo-class = positive).

Two input forms of the same loss:
- `multi_positive_info_nce`: positives as a dense bool matrix [Nq, Nk];
- `block_positive_info_nce`: positives only among the keys of the query's own image
  (pixel level), given per image [B, S, S']: only the similarity matrix for the
  denominator is [B*S, Nk]; no [B*S, Nk] mask or log-probability matrix is built.

Similarities are computed in float32 with autocast off (safe under bf16/fp16).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_NEG = -1e9  # logit of keys that are not allowed (finite: rows stay NaN-free)


def _check_temperature(temperature: float) -> None:
    if temperature <= 0:
        raise ValueError(f"info_nce: temperature must be > 0, got {temperature}")


def multi_positive_info_nce(
    query: Tensor,
    keys: Tensor,
    positive: Tensor,
    temperature: float,
    *,
    query_valid: Tensor | None = None,
    key_valid: Tensor | None = None,
    exclude: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-query multi-positive InfoNCE.

    query: float [Nq, D]; keys: float [Nk, D] (both L2-normalised here); positive: bool
    [Nq, Nk]; temperature: > 0; query_valid: bool [Nq] (default all); key_valid: bool [Nk]
    (invalid keys are neither positives nor negatives); exclude: bool [Nq, Nk] pairs that
    are neither (e.g. a query with itself).

    Returns (loss float32 [Nq], counted bool [Nq]); a query counts when it is valid and has
    at least one allowed positive. Reduce with `global_mean` (or ``loss[counted].mean()``).
    """
    if query.dim() != 2 or keys.dim() != 2 or query.shape[1] != keys.shape[1]:
        raise ValueError(
            f"multi_positive_info_nce: query [Nq, D] and keys [Nk, D] expected, got "
            f"{tuple(query.shape)} and {tuple(keys.shape)}"
        )
    if positive.shape != (query.shape[0], keys.shape[0]) or positive.dtype != torch.bool:
        raise ValueError(
            f"multi_positive_info_nce: positive must be bool [{query.shape[0]}, {keys.shape[0]}], "
            f"got {positive.dtype} {tuple(positive.shape)}"
        )
    _check_temperature(temperature)
    with torch.autocast(query.device.type, enabled=False):  # float32 logits
        q = F.normalize(query.float(), dim=1)
        k = F.normalize(keys.float(), dim=1)
        logits = (q @ k.t()) / temperature  # [Nq, Nk]
    pos = positive
    if key_valid is not None:
        logits = logits.masked_fill(~key_valid[None, :], _NEG)
        pos = pos & key_valid[None, :]
    if exclude is not None:
        logits = logits.masked_fill(exclude, _NEG)
        pos = pos & ~exclude
    n_pos = pos.sum(dim=1)
    pos_mean = torch.where(pos, logits, torch.zeros_like(logits)).sum(dim=1) / n_pos.clamp_min(1)
    loss = torch.logsumexp(logits, dim=1) - pos_mean
    counted = n_pos > 0
    if query_valid is not None:
        counted = counted & query_valid
    return loss, counted


def block_positive_info_nce(
    query: Tensor,
    own_keys: Tensor,
    positive: Tensor,
    all_keys: Tensor,
    temperature: float,
    *,
    query_valid: Tensor | None = None,
    own_key_valid: Tensor | None = None,
    all_key_valid: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Multi-positive InfoNCE whose positives lie among the query's own image's keys.

    query: float [B, S, D] queries of B images; own_keys: float [B, S', D] the keys of the
    same images (they must also appear in `all_keys`); positive: bool [B, S, S'];
    all_keys: float [Nk, D] every key of the denominator (e.g. gathered from all ranks);
    *_valid: bool [B, S], [B, S'], [Nk] (default all).

    Returns (loss float32 [B*S], counted bool [B*S]) as `multi_positive_info_nce` would for
    the equivalent block-structured [B*S, Nk] positive matrix.
    """
    B, S, D = query.shape
    if own_keys.dim() != 3 or own_keys.shape[0] != B or own_keys.shape[2] != D:
        raise ValueError(f"block_positive_info_nce: own_keys must be [{B}, S', {D}], got {tuple(own_keys.shape)}")
    if positive.shape != (B, S, own_keys.shape[1]) or positive.dtype != torch.bool:
        raise ValueError(
            f"block_positive_info_nce: positive must be bool [{B}, {S}, {own_keys.shape[1]}], "
            f"got {positive.dtype} {tuple(positive.shape)}"
        )
    if all_keys.dim() != 2 or all_keys.shape[1] != D:
        raise ValueError(f"block_positive_info_nce: all_keys must be [Nk, {D}], got {tuple(all_keys.shape)}")
    _check_temperature(temperature)
    with torch.autocast(query.device.type, enabled=False):  # float32 logits
        q = F.normalize(query.float(), dim=2)
        own = torch.bmm(q, F.normalize(own_keys.float(), dim=2).transpose(1, 2)) / temperature  # [B, S, S']
        logits = (q.reshape(B * S, D) @ F.normalize(all_keys.float(), dim=1).t()) / temperature  # [B*S, Nk]
    if all_key_valid is not None:
        logits = logits.masked_fill(~all_key_valid[None, :], _NEG)
    pos = positive if own_key_valid is None else positive & own_key_valid[:, None, :]
    n_pos = pos.sum(dim=2)
    pos_mean = torch.where(pos, own, torch.zeros_like(own)).sum(dim=2) / n_pos.clamp_min(1)
    loss = torch.logsumexp(logits, dim=1) - pos_mean.reshape(B * S)
    counted = (n_pos > 0).reshape(B * S)
    if query_valid is not None:
        counted = counted & query_valid.reshape(B * S)
    return loss, counted
