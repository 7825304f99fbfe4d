"""The store stage: where training runs and captures are cached, by a hash of what determines them.

``keys`` (every hash: capture and training keys, file and factory digests), ``codec`` (the layout of arrays inside
cache files), ``store`` (CaptureStore and CaptureDir: directories, manifests, step files, curvature maps),
``integrity`` (checksums, corrupt files quarantined, ``cache verify``), ``locks``. Only the
pipeline imports the store. Import from the modules: ``keys`` loads torch, which ``llstudio cache`` does without.
"""
