"""Code that runs outside eegattn, on the challenge server or in the validation subprocess.

Everything here must stay Python 3.10 syntax and use only torch 2.2's public API (and the
standard library): ``submission.py`` is copied into every zip, ``harness.py`` plays the
server's harness in a fresh interpreter where eegattn cannot be imported, and
``torch22_ops.py`` is data. This folder is a package only so that the files ship with eegattn.
"""
