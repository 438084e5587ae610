"""``genlab release``: the student bundle (a stubbed library wheel, the release notebooks, a README).

One job per module: ``stubs`` (ast rewriting of one module), ``library`` (the stubbed copy
of the package), ``wheel`` (a wheel from that copy), ``notebooks`` (the install cell),
``bundle`` (the whole bundle, one progress line per step) and ``cli`` (the subcommand).
"""
