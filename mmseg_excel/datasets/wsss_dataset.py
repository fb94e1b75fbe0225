# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Common base of the WSSS datasets (docs/methods/excel.md §8.1 "Data layout").

A WSSS sample is an image, its image-level labels and (for evaluation, or to
derive the labels) its VOC-style mask. Subclasses only say where an image id's
image and mask live (:meth:`BaseWSSSDataset.sample_paths`).
"""
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

import mmengine
from mmengine.logging import print_log

from mmseg.datasets import BaseSegDataset
from .image_labels import check_labels_cover, read_labels_file


class BaseWSSSDataset(BaseSegDataset):
    """A split-file dataset whose samples carry image-level labels.

    Each data info holds ``img_id``, ``img_path``, ``seg_map_path``,
    ``num_classes`` (classes incl. background, read by
    ``LoadImageLevelLabels``), ``label_map``, ``reduce_zero_label``,
    ``seg_fields`` and, when configured, ``cls_label_ids`` (from
    ``cls_labels_file``) and ``pseudo_seg_map_path``.

    Loading checks the input and names the file at fault: a missing
    ``data_root`` or split file, images named by the split file but absent, a
    labels file lacking an image, missing pseudo masks. At run time, an
    ``OSError`` of the pipeline that names none of the sample's files (PIL's
    ``UnidentifiedImageError`` for a corrupt JPEG, decoded from bytes) is
    re-raised as an ``OSError`` naming the image and mask files.

    Args:
        ann_file (str): Split file, one image id per line (relative paths are
            joined with ``data_root``).
        cls_labels_file (str, optional): Labels file written by
            ``tools/dataset_converters/*_image_labels.py`` (JSON, or the
            official ``cls_labels_onehot.npy``; formats in
            :mod:`mmseg_excel.datasets.image_labels`); relative paths are
            joined with ``data_root``.
        label_source (str): Where the image-level labels come from:
            ``'file'`` (``cls_labels_file``), ``'mask'`` (derived from the
            ground-truth masks by ``LoadImageLevelLabels``), the dataset's
            official source (``'xml'`` for VOC, ``'list'`` for COCO, see the
            subclasses), or ``'auto'`` (default): ``'file'`` when
            ``cls_labels_file`` is set, else the official source when its
            files exist, else ``'mask'``. The chosen source is logged and
            kept in :attr:`label_source_used`.
        pseudo_seg_map_dir (str, optional): Folder of pseudo masks
            ``<img_id><pseudo_seg_map_suffix>`` used for training instead of
            the ground truth (read by ``LoadPseudoSegMap``); relative paths
            are joined with ``data_root``. Leave unset for validation.
        pseudo_seg_map_suffix (str): Pseudo mask suffix. Defaults to '.png'.
        check_files (bool): Check at load time that every listed image (and
            pseudo mask) exists. Defaults to True.
        **kwargs: ``BaseSegDataset`` arguments (``data_root``,
            ``data_prefix``, ``pipeline``, ``indices``, ...).
    """

    #: name of the dataset's official label source (subclasses)
    OFFICIAL_LABEL_SOURCE: Optional[str] = None

    def __init__(self,
                 ann_file: str,
                 cls_labels_file: Optional[str] = None,
                 label_source: str = 'auto',
                 pseudo_seg_map_dir: Optional[str] = None,
                 pseudo_seg_map_suffix: str = '.png',
                 check_files: bool = True,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        data_root = kwargs.get('data_root')
        self.cls_labels_file = self._join_root(data_root, cls_labels_file)
        sources = ['auto', 'file', 'mask']
        if self.OFFICIAL_LABEL_SOURCE:
            sources.append(self.OFFICIAL_LABEL_SOURCE)
        if label_source not in sources:
            raise ValueError(
                f'{self.__class__.__name__}: label_source must be one of '
                f'{sources}, got {label_source!r}')
        self.label_source = label_source
        self.label_source_used: Optional[str] = None
        self.pseudo_seg_map_dir = self._join_root(data_root,
                                                  pseudo_seg_map_dir)
        self.pseudo_seg_map_suffix = pseudo_seg_map_suffix
        self.check_files = check_files
        super().__init__(
            ann_file=ann_file,
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            **kwargs)

    @staticmethod
    def _join_root(root: Optional[str], path: Optional[str]) -> Optional[str]:
        """Join a relative path with the data root (mmengine convention)."""
        if path is None or root is None or osp.isabs(path):
            return path
        return osp.join(root, path)

    @property
    def num_classes(self) -> int:
        """Number of classes including background."""
        return len(self._metainfo['classes'])

    def sample_paths(self, img_id: str) -> Tuple[str, Optional[str]]:
        """Image and mask path of one image id (subclasses)."""
        raise NotImplementedError

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline on sample ``idx``; an ``OSError`` that names none
        of the sample's files is re-raised naming its image and mask."""
        try:
            return super().prepare_data(idx)
        except OSError as e:
            info = self.get_data_info(idx)
            img_path = info.get('img_path')
            paths = [
                info.get(k) for k in ('img_path', 'seg_map_path',
                                      'pseudo_seg_map_path') if info.get(k)
            ]
            if not img_path or any(p in str(e) for p in paths):
                raise  # already names the file at fault
            raise OSError(
                f'cannot load sample {idx}: image {img_path} (mask '
                f'{info.get("seg_map_path")}): {type(e).__name__}: {e}') from e

    def _read_split(self) -> List[str]:
        """Image ids of the split file, with input checks."""
        if (self.data_root is not None and self.backend_args is None
                and not osp.isdir(self.data_root)):
            raise FileNotFoundError(
                f'dataset root not found: {self.data_root} '
                f'({self.__class__.__name__})')
        if not self.ann_file:
            raise ValueError(f'{self.__class__.__name__} needs a split file '
                             '(ann_file)')
        if self.backend_args is None and not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'split file not found: {self.ann_file}')
        # the image name is the first token of a line (label lists such as
        # CLIP-ES's coco14/train.txt append class ids and may add the suffix)
        ids = []
        for line in mmengine.list_from_file(
                self.ann_file, backend_args=self.backend_args):
            if not line.strip():
                continue
            name = line.split()[0]
            if self.img_suffix and name.endswith(self.img_suffix):
                name = name[:-len(self.img_suffix)]
            ids.append(name)
        if not ids:
            raise ValueError(f'split file {self.ann_file} lists no image')
        return ids

    @property
    def label_classes(self) -> List[str]:
        """Classes the label sources are written in: the original classes
        when a ``label_map`` maps them to a custom subset."""
        if self.label_map and self.METAINFO.get('classes'):
            return list(self.METAINFO['classes'])
        return list(self._metainfo['classes'])

    def official_labels_available(self) -> bool:
        """Whether the files of the official label source exist
        (subclasses)."""
        return False

    def read_official_labels(self, ids: List[str]) -> Dict[str, List[int]]:
        """Image-level labels of ``ids`` from the official source
        (subclasses)."""
        raise NotImplementedError

    def official_labels_location(self) -> str:
        """Where the official labels are read from, for messages."""
        return ''

    def resolve_label_source(self) -> str:
        """The label source ``'auto'`` stands for (see the class doc)."""
        if self.label_source != 'auto':
            return self.label_source
        if self.cls_labels_file is not None:
            return 'file'
        if self.OFFICIAL_LABEL_SOURCE and self.official_labels_available():
            return self.OFFICIAL_LABEL_SOURCE
        return 'mask'

    def _labels(self, ids: List[str]) -> Optional[Dict[str, List[int]]]:
        """Image-level labels of the chosen source (None: from the masks)."""
        source = self.resolve_label_source()
        self.label_source_used = source
        if source == 'file' and self.cls_labels_file is None:
            raise ValueError(f"{self.__class__.__name__}: label_source='file' "
                             'needs cls_labels_file')
        where = {
            'file': f'labels file {self.cls_labels_file}',
            'mask': 'the ground-truth masks'
        }.get(source) or self.official_labels_location()
        print_log(
            f'{self.__class__.__name__} ({osp.basename(self.ann_file)}): '
            f'image-level labels from {source} ({where})',
            logger='current')
        if source == 'mask':
            return None
        if source == 'file':
            labels = read_labels_file(
                self.cls_labels_file,
                num_classes=len(self.label_classes),
                classes=self.label_classes)
        else:
            labels = self.read_official_labels(ids)
        check_labels_cover(labels, ids, where, self.ann_file)
        return labels

    def load_data_list(self) -> List[dict]:
        """Build the data infos of the split, checking the files."""
        ids = self._read_split()
        labels = self._labels(ids)
        # local-file checks; skipped for remote backends
        check = self.check_files and self.backend_args is None
        data_list = []
        missing_img, missing_pseudo = [], []
        for img_id in ids:
            img_path, seg_map_path = self.sample_paths(img_id)
            if check and not osp.isfile(img_path):
                missing_img.append(img_path)
            info = dict(
                img_id=img_id,
                img_path=img_path,
                seg_map_path=seg_map_path,
                num_classes=self.num_classes,
                label_map=self.label_map,
                reduce_zero_label=self.reduce_zero_label,
                seg_fields=[])
            if labels is not None:
                info['cls_label_ids'] = labels[img_id]
            if self.pseudo_seg_map_dir is not None:
                pseudo = osp.join(self.pseudo_seg_map_dir,
                                  img_id + self.pseudo_seg_map_suffix)
                if check and not osp.isfile(pseudo):
                    missing_pseudo.append(pseudo)
                info['pseudo_seg_map_path'] = pseudo
            data_list.append(info)
        if missing_img:
            raise FileNotFoundError(
                f'{len(missing_img)} image(s) listed in {self.ann_file} do not '
                f'exist, first: {missing_img[0]}')
        if missing_pseudo:
            raise FileNotFoundError(
                f'{len(missing_pseudo)} pseudo mask(s) missing in '
                f'{self.pseudo_seg_map_dir}, first: {missing_pseudo[0]}')
        return data_list
