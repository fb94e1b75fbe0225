# Copyright (c) mmseg-excel contributors. All rights reserved.
"""The attribute bank of TSE: build, save, load and validate
(docs/methods/excel.md §2.2-
2.3).

Recipe (official): every description string is lower-cased, encoded with the
CLIP text tower and L2-normalised; all embeddings (JSON order) are clustered
with scikit-learn ``KMeans(n_clusters=M, random_state=seed, n_init=10)``
(k-means++, default tolerance, float32). The centres ``C`` are stored
transposed, ``(E, M)``, and NOT re-normalised; ``flags[c, m] = 1`` when a
description of class ``c`` fell into cluster ``m`` (``(K_fg, M)``, unused by
the model).

A bank file written here is a dict with ``centers``, ``flags``,
``class_order``, ``descriptions_sha256``, ``descriptions_file``,
``n_clusters``, ``seed``, ``n_init``, ``clip`` (``model_name``,
``pretrained``, ``text_fingerprint``) and ``sklearn_version``. The fixture
format (``centers``, ``flags``, ``class_order``, ``descriptions_sha256``) and
the upstream ``.pth`` (a list ``[C, flag]``) load too; what they lack is not
checked.
"""
import hashlib
import json
import os
import os.path as osp
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log

from ...utils.paths import resolve_data_path
from .clip_text import Tokenizer, encode_texts, text_tower_fingerprint

BANK_FORMAT = 'mmseg_excel.attribute_bank/1'


@dataclass
class AttributeBank:
    """Cluster centres ``centers`` (E, M) and class flags ``flags`` (K, M)."""

    centers: torch.Tensor
    flags: torch.Tensor
    class_order: Optional[List[str]] = None
    descriptions_sha256: Optional[str] = None
    n_clusters: Optional[int] = None
    clip: Dict[str, Any] = field(default_factory=dict)
    meta: Dict[str, Any] = field(default_factory=dict)
    source: Optional[str] = None

    @property
    def num_clusters(self) -> int:
        """M, the number of clusters."""
        return int(self.centers.shape[1])

    @property
    def num_classes(self) -> int:
        """K_fg, the number of foreground classes of the flags."""
        return int(self.flags.shape[0])

    def clusters_per_class(self) -> torch.Tensor:
        """(K,) number of clusters each class owns (flag count)."""
        return (self.flags > 0).sum(dim=1)

    def to_dict(self) -> Dict[str, Any]:
        """The serialisable bank-file dict."""
        return dict(
            format=BANK_FORMAT,
            centers=self.centers.float().cpu(),
            flags=self.flags.float().cpu(),
            class_order=list(self.class_order or []),
            descriptions_sha256=self.descriptions_sha256,
            n_clusters=self.num_clusters,
            clip=dict(self.clip),
            **self.meta)


# --------------------------------------------------------------- descriptions
def file_sha256(path: str) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def load_descriptions(path: str) -> Dict[str, List[str]]:
    """Read a descriptions JSON (object: class name -> list of sentences)."""
    path = resolve_data_path(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'descriptions file not found: {path}')
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'descriptions file {path} is not valid JSON: {e}')
    if not isinstance(data, dict) or not data:
        raise ValueError(f'descriptions file {path} must hold a non-empty '
                         'JSON object: class name -> list of sentences')
    for name, sents in data.items():
        if (not isinstance(sents, list) or not sents
                or not all(isinstance(s, str) and s.strip() for s in sents)):
            raise ValueError(
                f'descriptions file {path}: class {name!r} must map to a '
                'non-empty list of non-empty strings')
    return data


def descriptions_from_templates(
        class_names: Sequence[str],
        templates: Sequence[str]) -> Dict[str, List[str]]:
    """Fallback descriptions from class names and prompt templates only
    (no LLM): ``{name: [t.format(name) for t in templates]}``
    (docs/custom_dataset.md)."""
    if not class_names:
        raise ValueError('no class names given')
    if len(set(class_names)) != len(class_names):
        raise ValueError(f'class names repeat: {list(class_names)}')
    bad = [t for t in templates if '{}' not in t]
    if not templates or bad:
        raise ValueError(f'templates must each hold "{{}}", got {bad or []}')
    return {n: [t.format(n) for t in templates] for n in class_names}


def write_descriptions(path: str, descriptions: Dict[str,
                                                     List[str]]) -> None:
    """Write a descriptions JSON (class name -> sentences), UTF-8."""
    d = osp.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(descriptions, f, indent=1, ensure_ascii=False)
        f.write('\n')


# ------------------------------------------------------------------- building
def embed_descriptions(
        clip_model: nn.Module,
        tokenizer: Tokenizer,
        descriptions: Dict[str, List[str]],
        batch_size: int = 256,
        progress: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised CLIP embeddings of every lower-cased description (JSON
    order) ``(D, E)`` and the class index of each ``(D,)``."""
    texts, owner = [], []
    for c, sents in enumerate(descriptions.values()):
        texts += [s.lower() for s in sents]
        owner += [c] * len(sents)
    emb = encode_texts(
        clip_model,
        tokenizer,
        texts,
        batch_size=batch_size,
        normalize=True,
        progress=progress)
    return emb, torch.tensor(owner, dtype=torch.long)


def cluster_descriptions(
        embeddings: torch.Tensor,
        owner: torch.Tensor,
        num_classes: int,
        n_clusters: int,
        seed: int = 0,
        n_init: int = 10) -> Tuple[torch.Tensor, torch.Tensor]:
    """KMeans of the description embeddings (docs/methods/excel.md §2.3).

    Returns ``centers`` (E, M) (cluster means, not re-normalised) and
    ``flags`` (num_classes, M) float, 1 where a class has a member.
    """
    from sklearn.cluster import KMeans
    n = embeddings.shape[0]
    if not 0 < n_clusters <= n:
        raise ValueError(f'n_clusters={n_clusters} must be in 1..{n} '
                         '(the number of descriptions)')
    x = embeddings.detach().cpu().float().numpy()
    km = KMeans(n_clusters=n_clusters, random_state=seed, n_init=n_init)
    labels = torch.from_numpy(km.fit_predict(x)).long()
    centers = torch.from_numpy(km.cluster_centers_).float().t().contiguous()
    flags = torch.zeros(num_classes, n_clusters)
    flags[owner, labels] = 1.0
    return centers, flags


def build_attribute_bank(clip_model: nn.Module,
                         tokenizer: Tokenizer,
                         descriptions_file: str,
                         n_clusters: int,
                         seed: int = 0,
                         n_init: int = 10,
                         model_name: Optional[str] = None,
                         pretrained: Optional[str] = None,
                         text_fingerprint: Optional[str] = None,
                         verbose: bool = False) -> AttributeBank:
    """Embed and cluster a descriptions file into an :class:`AttributeBank`."""
    import sklearn
    desc = load_descriptions(descriptions_file)
    t0 = time.time()
    emb, owner = embed_descriptions(
        clip_model, tokenizer, desc, progress=verbose)
    if verbose:
        print_log(
            f'embedded {emb.shape[0]} descriptions of {len(desc)} classes '
            f'in {time.time() - t0:.1f}s; clustering into {n_clusters} '
            f'(seed {seed}, n_init {n_init})',
            logger='current')
    t0 = time.time()
    centers, flags = cluster_descriptions(emb, owner, len(desc), n_clusters,
                                          seed, n_init)
    if verbose:
        print_log(f'KMeans done in {time.time() - t0:.1f}s', logger='current')
    return AttributeBank(
        centers=centers,
        flags=flags,
        class_order=list(desc),
        descriptions_sha256=file_sha256(descriptions_file),
        n_clusters=n_clusters,
        clip=dict(
            model_name=model_name,
            pretrained=pretrained,
            text_fingerprint=(text_fingerprint
                              or text_tower_fingerprint(clip_model))),
        meta=dict(
            descriptions_file=osp.basename(descriptions_file),
            seed=seed,
            n_init=n_init,
            sklearn_version=sklearn.__version__),
        source=None)


# ------------------------------------------------------------------------ I/O
def save_attribute_bank(bank: AttributeBank, path: str) -> None:
    """Write a bank file atomically (temp file in the same folder, rename)."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=folder, prefix='.' + osp.basename(path) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(bank.to_dict(), f)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def load_attribute_bank(path: str) -> AttributeBank:
    """Read a bank file: ours, the fixture dict, or the upstream ``[C, flag]``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'attribute bank file not found: {path}')
    try:
        obj = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # noqa: BLE001 - report which file is bad
        raise ValueError(f'cannot read attribute bank {path}: {e}') from e
    if isinstance(obj, (list, tuple)):
        if len(obj) != 2 or not all(torch.is_tensor(t) for t in obj):
            raise ValueError(f'attribute bank {path}: a list bank must be '
                             '[centers (E, M), flags (K, M)]')
        obj = dict(centers=obj[0], flags=obj[1])
    if not isinstance(obj, dict) or 'centers' not in obj:
        raise ValueError(f'attribute bank {path} holds no "centers"')
    centers = obj['centers'].float()
    flags = obj.get('flags')
    if centers.dim() != 2:
        raise ValueError(f'attribute bank {path}: centers must be (E, M), '
                         f'got {tuple(centers.shape)}')
    if flags is None:
        raise ValueError(f'attribute bank {path} holds no "flags"')
    flags = flags.float()
    if flags.dim() != 2 or flags.shape[1] != centers.shape[1]:
        raise ValueError(
            f'attribute bank {path}: flags {tuple(flags.shape)} do not match '
            f'centers {tuple(centers.shape)} (expected (K, M))')
    known = {
        'centers', 'flags', 'class_order', 'descriptions_sha256', 'n_clusters',
        'clip', 'format'
    }
    return AttributeBank(
        centers=centers,
        flags=flags,
        class_order=(list(obj['class_order'])
                     if obj.get('class_order') is not None else None),
        descriptions_sha256=obj.get('descriptions_sha256'),
        n_clusters=obj.get('n_clusters'),
        clip=dict(obj.get('clip') or {}),
        meta={
            k: v
            for k, v in obj.items() if k not in known
        },
        source=path)


def validate_attribute_bank(bank: AttributeBank,
                            *,
                            num_classes: Optional[int] = None,
                            class_order: Optional[List[str]] = None,
                            descriptions_sha256: Optional[str] = None,
                            text_fingerprint: Optional[str] = None,
                            n_clusters: Optional[int] = None,
                            embed_dim: Optional[int] = None) -> None:
    """Raise ``ValueError`` naming the first mismatch between a bank and what
    the model expects. Checks that the bank file cannot support (fields it
    lacks) are skipped."""
    src = bank.source or '<in-memory bank>'
    if embed_dim is not None and bank.centers.shape[0] != embed_dim:
        raise ValueError(
            f'attribute bank {src}: centers have dim {bank.centers.shape[0]} '
            f'but the CLIP text embeddings have dim {embed_dim} '
            '(bank built with another CLIP?)')
    fp = bank.clip.get('text_fingerprint')
    if text_fingerprint is not None and fp is not None \
            and fp != text_fingerprint:
        raise ValueError(
            f'attribute bank {src} was built with another CLIP: text-tower '
            f'fingerprint {fp[:16]}... (model {bank.clip.get("model_name")}, '
            f'weights {bank.clip.get("pretrained")}) but the configured CLIP '
            f'has {text_fingerprint[:16]}...; rebuild the bank')
    if num_classes is not None and bank.num_classes != num_classes:
        raise ValueError(
            f'attribute bank {src} has {bank.num_classes} classes but the '
            f'model has {num_classes} foreground classes')
    if class_order is not None and bank.class_order is not None \
            and list(bank.class_order) != list(class_order):
        diff = [(i, a, b)
                for i, (a, b) in enumerate(zip(bank.class_order, class_order))
                if a != b][:3]
        raise ValueError(
            f'attribute bank {src} class order differs from the expected one '
            f'({len(bank.class_order)} vs {len(class_order)} classes; first '
            f'differences (index, bank, expected): {diff})')
    if descriptions_sha256 is not None and bank.descriptions_sha256 \
            is not None and bank.descriptions_sha256 != descriptions_sha256:
        raise ValueError(
            f'attribute bank {src} was built from other descriptions '
            f'(sha256 {bank.descriptions_sha256[:16]}... vs '
            f'{descriptions_sha256[:16]}... of the configured file)')
    if n_clusters is not None and bank.num_clusters != n_clusters:
        raise ValueError(
            f'attribute bank {src} has {bank.num_clusters} clusters but '
            f'num_clusters={n_clusters} is configured')


def bank_cache_path(cache_dir: str, descriptions_file: str,
                    descriptions_sha: str, text_fingerprint: str,
                    n_clusters: int, seed: int, n_init: int) -> str:
    """Cache file name: descriptions stem, CLIP and descriptions hashes and
    the clustering settings."""
    stem = osp.splitext(osp.basename(descriptions_file))[0]
    name = (f'{stem}_clip-{text_fingerprint[:12]}_desc-{descriptions_sha[:12]}'
            f'_k{n_clusters}_s{seed}_n{n_init}.pt')
    return osp.join(cache_dir, name)


def get_attribute_bank(clip_model: nn.Module,
                       tokenizer: Tokenizer,
                       *,
                       descriptions: Optional[str] = None,
                       bank_file: Optional[str] = None,
                       num_clusters: Optional[int] = None,
                       seed: int = 0,
                       n_init: int = 10,
                       cache_dir: Optional[str] = None,
                       num_classes: Optional[int] = None,
                       model_name: Optional[str] = None,
                       pretrained: Optional[str] = None,
                       text_fingerprint: Optional[str] = None,
                       verbose: bool = True) -> AttributeBank:
    """The bank for a model: load ``bank_file`` or the cached build, else
    build from ``descriptions`` and cache it ("build at first use").

    Every loaded bank is validated against the CLIP, the class count and,
    when ``descriptions`` is given, its class order and sha256.
    """
    if text_fingerprint is None:
        text_fingerprint = text_tower_fingerprint(clip_model)
    embed_dim = None
    proj = getattr(clip_model, 'text_projection', None)
    if isinstance(proj, torch.Tensor) and proj.dim() == 2:
        embed_dim = proj.shape[1]
    expect: Dict[str, Any] = dict(
        num_classes=num_classes,
        text_fingerprint=text_fingerprint,
        n_clusters=num_clusters,
        embed_dim=embed_dim)
    desc_sha = None
    if descriptions is not None:
        desc = load_descriptions(descriptions)
        desc_sha = file_sha256(descriptions)
        expect.update(class_order=list(desc), descriptions_sha256=desc_sha)
        if num_classes is not None and len(desc) != num_classes:
            raise ValueError(
                f'descriptions file {descriptions} has {len(desc)} classes '
                f'but the model has {num_classes} foreground classes')
    if bank_file is not None and osp.isfile(bank_file):
        bank = load_attribute_bank(bank_file)
        validate_attribute_bank(bank, **expect)
        return bank
    if descriptions is None:
        if bank_file is not None:
            raise FileNotFoundError(
                f'attribute bank file not found: {bank_file} (give '
                'tse.descriptions to build it)')
        raise ValueError('TSE needs tse.descriptions or tse.bank_file')
    if num_clusters is None:
        raise ValueError('tse.num_clusters is required to build a bank')
    if bank_file is not None:
        out = bank_file
    elif cache_dir is not None:
        out = bank_cache_path(cache_dir, descriptions, desc_sha,
                              text_fingerprint, num_clusters, seed, n_init)
    else:
        out = None
    if out is not None and osp.isfile(out):
        bank = load_attribute_bank(out)
        validate_attribute_bank(bank, **expect)
        return bank
    bank = build_attribute_bank(
        clip_model,
        tokenizer,
        descriptions,
        num_clusters,
        seed=seed,
        n_init=n_init,
        model_name=model_name,
        pretrained=pretrained,
        text_fingerprint=text_fingerprint,
        verbose=verbose)
    validate_attribute_bank(bank, **expect)
    if out is not None:
        save_attribute_bank(bank, out)
        bank.source = out
        if verbose:
            print_log(f'attribute bank saved to {out}', logger='current')
    return bank
