# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Class text embeddings, the attribute bank and TSE (docs/methods/excel.md
§2)."""
from .attribute_bank import (AttributeBank, build_attribute_bank,
                             descriptions_from_templates, get_attribute_bank,
                             load_attribute_bank, load_descriptions,
                             save_attribute_bank, validate_attribute_bank,
                             write_descriptions)
from .clip_text import (encode_class_texts, encode_texts, get_clip_tokenizer,
                        load_clip_model, text_tower_fingerprint)
from .context_prompts import CLIPTextContextEncoder, tokenize_class_names
from .prompts import (BACKGROUND_SETS, CLASS_NAME_SETS, ORIGAMI_TEMPLATE,
                      resolve_bg_names, resolve_class_names, resolve_templates)
from .tse import (ExCELTextHead, attribute_weights, num_masked_clusters,
                  text_semantic_enrichment)

__all__ = [
    'CLIPTextContextEncoder', 'tokenize_class_names',
    'AttributeBank', 'build_attribute_bank', 'get_attribute_bank',
    'load_attribute_bank', 'load_descriptions', 'save_attribute_bank',
    'validate_attribute_bank', 'descriptions_from_templates',
    'write_descriptions', 'encode_class_texts', 'encode_texts',
    'get_clip_tokenizer', 'load_clip_model', 'text_tower_fingerprint',
    'BACKGROUND_SETS', 'CLASS_NAME_SETS', 'ORIGAMI_TEMPLATE',
    'resolve_bg_names', 'resolve_class_names', 'resolve_templates',
    'ExCELTextHead', 'attribute_weights', 'num_masked_clusters',
    'text_semantic_enrichment'
]
