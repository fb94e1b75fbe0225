# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Placeholder, replaced by the foundation work."""
