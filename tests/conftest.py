"""Shared test helpers live beside this file (`layout_files.py`); pytest puts this folder on
`sys.path` because of this conftest, so every test folder can import them.
"""
