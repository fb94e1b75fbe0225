# Copyright (c) mmseg-excel contributors. All rights reserved.
"""A WSSS dataset from a folder of images and a labels table — the custom
dataset path of docs/custom_dataset.md (no code to write)."""
import os.path as osp
from typing import Dict, List, Optional, Tuple

from mmseg.registry import DATASETS

from .image_labels import read_named_labels
from .voc_wsss import custom_metainfo
from .wsss_dataset import BaseWSSSDataset


@DATASETS.register_module()
class WSSSFolderDataset(BaseWSSSDataset):
    """Images in a folder, image-level labels in a CSV or JSON table.

    Layout (relative to ``data_root``)::

        images/0001.jpg ...          # data_prefix.img_path
        labels.csv                   # labels_file: image,labels (cat;dog)
        masks/0001.png ...           # optional, data_prefix.seg_map_path:
                                     # class ids, 0 background, 255 ignore
        val.txt                      # optional split (ann_file)

    The samples are the images of ``ann_file`` (one file name or stem per
    line) or, without it, every image of ``labels_file``. Image-level labels
    come from ``labels_file`` (class names, format in
    :func:`~mmseg_excel.datasets.image_labels.read_named_labels`); with
    ``label_source='mask'`` they are derived from the masks instead (a split
    without labels, scored against masks).

    Args:
        metainfo: ``dict(classes=(background, cls1, ...))`` (background
            first) and optionally ``palette`` (default: the VOC colour map).
        labels_file: the labels table (relative to ``data_root``).
        ann_file: optional split file.
        data_prefix: ``img_path`` (default ``'images'``) and, for scoring,
            ``seg_map_path`` (masks ``<stem><seg_map_suffix>``).
        label_source: ``'auto'`` (the table when given, else the masks),
            ``'file'`` or ``'mask'``.
        **kwargs: :class:`BaseWSSSDataset` arguments.
    """
    METAINFO: dict = dict()

    def __init__(self,
                 metainfo: Optional[dict] = None,
                 labels_file: Optional[str] = None,
                 ann_file: str = '',
                 data_prefix: dict = dict(img_path='images'),
                 **kwargs) -> None:
        metainfo = custom_metainfo(metainfo, 'WSSSFolderDataset')
        self.labels_file = self._join_root(kwargs.get('data_root'),
                                           labels_file)
        self._named: Optional[Dict[str, List[int]]] = None
        self._files: Dict[str, str] = {}
        kwargs.setdefault('img_suffix', '')
        super().__init__(
            ann_file=ann_file, metainfo=metainfo, data_prefix=data_prefix,
            **kwargs)

    # -- the labels table -------------------------------------------------
    def _table(self) -> Dict[str, List[int]]:
        """stem -> class ids of the labels table (file names kept)."""
        if self._named is None:
            if self.labels_file is None:
                raise ValueError('WSSSFolderDataset needs labels_file (or '
                                 "ann_file with label_source='mask')")
            named = read_named_labels(self.labels_file,
                                      self.label_classes)
            self._named = {}
            for name, ids in named.items():
                stem = osp.splitext(name)[0]
                if stem in self._named:
                    raise ValueError(f'{self.labels_file}: two images named '
                                     f'{stem!r} (with another suffix)')
                self._named[stem] = ids
                self._files[stem] = name
        return self._named

    def _read_split(self) -> List[str]:
        if self.ann_file:
            ids = super()._read_split()
            return [osp.splitext(i)[0] for i in ids]
        if self.data_root is not None and not osp.isdir(self.data_root):
            raise FileNotFoundError(f'dataset root not found: '
                                    f'{self.data_root} (WSSSFolderDataset)')
        return list(self._table())

    def resolve_label_source(self) -> str:
        if self.label_source == 'auto':
            return 'file' if self.labels_file is not None else 'mask'
        return self.label_source

    def _labels(self, ids: List[str]) -> Optional[Dict[str, List[int]]]:
        source = self.resolve_label_source()
        self.label_source_used = source
        if source == 'mask':
            return None
        table = self._table()
        missing = [i for i in ids if i not in table]
        if missing:
            raise KeyError(f'labels file {self.labels_file} has no row for '
                           f'{len(missing)} image(s) of the split, first: '
                           f'{missing[0]}')
        return {i: table[i] for i in ids}

    def sample_paths(self, img_id: str) -> Tuple[str, Optional[str]]:
        """The image (its file name in the table, else ``<id><img_suffix>``
        or the one file ``<id>.*`` of the folder) and its mask."""
        img_dir = self.data_prefix['img_path']
        name = self._files.get(img_id)
        if name is None:
            name = img_id + self.img_suffix
            if not self.img_suffix and self.backend_args is None:
                for ext in ('.jpg', '.jpeg', '.png', '.bmp', '.webp'):
                    if osp.isfile(osp.join(img_dir, img_id + ext)):
                        name = img_id + ext
                        break
        seg_dir = self.data_prefix.get('seg_map_path')
        seg = osp.join(seg_dir, img_id + self.seg_map_suffix) \
            if seg_dir else None
        return osp.join(img_dir, name), seg
