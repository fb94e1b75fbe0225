# mmseg's runtime plus the plugin import; every mmseg-excel config inherits it.
_base_ = ['mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['mmseg_excel'], allow_failed_imports=False)
