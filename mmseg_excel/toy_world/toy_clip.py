# Copyright (c) mmseg-excel contributors. All rights reserved.
"""The shipped Toy-World CLIP: paths, registration with open_clip, loading."""
import hashlib
from pathlib import Path
from typing import Optional, Tuple

TOY_CLIP_DIR = Path(__file__).resolve().parents[1] / 'data' / 'toy_clip'
TOY_CLIP_NAME = 'toy_clip'
TOY_CLIP_CONFIG = TOY_CLIP_DIR / f'{TOY_CLIP_NAME}.json'
TOY_CLIP_CHECKPOINT = TOY_CLIP_DIR / f'{TOY_CLIP_NAME}.pt'


def register_toy_clip(config: Optional[str] = None) -> str:
    """Register the toy CLIP JSON with open_clip; return the model name.

    The name is the JSON file's stem (``toy_clip`` for the shipped one); a
    ``conv_stem`` entry is honoured (``register_model_config``).
    """
    from mmseg_excel.utils.clip_weights import register_model_config
    path = Path(config) if config is not None else TOY_CLIP_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f'toy CLIP config not found: {path}')
    return register_model_config(str(path))


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def load_toy_clip(checkpoint: Optional[str] = None,
                  config: Optional[str] = None,
                  verify: bool = True) -> Tuple[object, object, str]:
    """Build the toy CLIP with open_clip and load its weights (fp32, eval).

    Returns ``(model, tokenizer, name)``. With ``verify`` the checkpoint must
    match the digest in ``<checkpoint>.sha256`` when that file exists.
    """
    import open_clip
    from mmseg_excel.utils.clip_weights import load_clip
    name = register_toy_clip(config)
    ckpt = Path(checkpoint) if checkpoint is not None else TOY_CLIP_CHECKPOINT
    if not ckpt.is_file():
        raise FileNotFoundError(f'toy CLIP checkpoint not found: {ckpt}')
    digest_file = Path(str(ckpt) + '.sha256')
    if verify and digest_file.is_file():
        want = digest_file.read_text().split()[0]
        got = file_sha256(str(ckpt))
        if want != got:
            raise ValueError(f'{ckpt}: sha256 {got} does not match '
                             f'{digest_file} ({want})')
    model = load_clip(name, str(ckpt))
    return model, open_clip.get_tokenizer(name), name
