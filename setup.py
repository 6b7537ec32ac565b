"""Package metadata lives in settings.ini (nbdev 2.x); this file only reads it."""
from configparser import ConfigParser
from pathlib import Path
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']
readme = Path('README.md')

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    keywords=cfg['keywords'].split(),
    author=cfg['author'],
    author_email=cfg['author_email'] or None,
    license='Apache-2.0',
    classifiers=['Programming Language :: Python :: 3'],
    url=cfg['git_url'] or None,
    project_urls={'Source': cfg['git_url']} if cfg['git_url'] else {},
    long_description=readme.read_text(encoding='utf-8') if readme.exists() else cfg['description'],
    long_description_content_type='text/markdown',
    python_requires='>=' + cfg['min_python'],
    packages=setuptools.find_packages(include=['msta_core', 'msta_core.*']),
    include_package_data=True,
    install_requires=cfg['requirements'].split(),
    extras_require={'dev': cfg['dev_requirements'].split()},
    entry_points={'nbdev': [f"{cfg['lib_name']}={cfg['lib_name']}._modidx:d"]},
    scripts=[],
    zip_safe=False,
)
