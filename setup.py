from setuptools import find_packages, setup


def read_version() -> str:
    namespace = {}
    with open('sspose_mm/version.py') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def read_requirements(path: str) -> list:
    with open(path) as f:
        return [
            line.strip() for line in f
            if line.strip() and not line.startswith('#')
        ]


setup(
    name='sspose_mm',
    version=read_version(),
    description='Transformer human-pose models (TransPose, SSpose, SHaRPose, '
    'HigherPose) as an MMPose 1.x plugin',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['sspose_mm', 'sspose_mm.*']),
    python_requires='>=3.9',
    # The stack is pinned in requirements/ and installed by `make venv`:
    # mmpose must be installed with --no-deps (its chumpy does not build on
    # Python 3.11), so it cannot be an install_requires entry here.
    install_requires=[],
    extras_require={'deploy': read_requirements('requirements/deploy.txt')},
    license='Apache-2.0',
    zip_safe=False,
)
