"""The component trainers, tenants of the training framework: the bundled mel VAE (:mod:`.vae`) and the
HiFi-GAN vocoder (:mod:`.vocoder`, losses in :mod:`.gan`).

Each is picked by ``run.trainer`` (``"vae"``, ``"vocoder"``) and runs with ``fluxmusic train`` like the
transformer: the same TOML loader and ``--set``, run-folder rules, checkpoint format with exact resume
and ``latest`` pointer, learning-rate schedule and metrics log (:mod:`.tenant` is the shared loop).
Their recipes are ``configs/bundled/vae.toml`` and ``configs/bundled/vocoder.toml``::

    fluxmusic train --config configs/bundled/vae.toml --auto-resume --set data.dir=data/demo
    fluxmusic train --config configs/bundled/vocoder.toml --auto-resume --set data.dir=data/demo
"""
