# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Install mmseg-excel; torch and mmcv come from ``tools/setup_env.sh``."""
import os.path as osp

from setuptools import find_packages, setup


def parse_requirements(fname: str) -> list:
    """Read a requirements file, skipping comments and blank lines."""
    path = osp.join(osp.dirname(osp.abspath(__file__)), fname)
    with open(path, encoding='utf-8') as f:
        return [
            line.strip() for line in f
            if line.strip() and not line.startswith('#')
        ]


def get_version() -> str:
    """Read ``__version__`` without importing the package."""
    scope: dict = {}
    with open(osp.join('mmseg_excel', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


setup(
    name='mmseg_excel',
    version=get_version(),
    description='Weakly supervised semantic segmentation with CLIP '
    '(ExCEL, CLIP-ES) as an MMSegmentation 1.x plugin',
    long_description=open('README.md', encoding='utf-8').read()
    if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    include_package_data=True,
    package_data={'mmseg_excel': ['data/**/*', 'data/*']},
    python_requires='>=3.9',
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require={
        'optional': parse_requirements('requirements/optional.txt'),
        'tests': parse_requirements('requirements/tests.txt'),
    },
    zip_safe=False)
