# mmseg's runtime plus the plugin import; every mmseg-excel config inherits it.
_base_ = ['mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['mmseg_excel'], allow_failed_imports=False)
# CAM / pseudo-label / prediction pictures (docs/visualization.md); add
# dict(type='TensorboardVisBackend') to vis_backends for TensorBoard.
visualizer = dict(
    type='WSSSVisualizer',
    vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')
