"""The ``shopbot`` command. ``main`` registers every command group; each group is one module here, with the
shared error handling in ``errors`` and the settings and resources commands use in ``context``.
"""
