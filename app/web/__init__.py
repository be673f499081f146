"""Browser pages of the service: the upload page at ``/`` and the Gaussian viewer at ``/viewer/{id}``.

The page sources live in the repository's ``web/`` folder; three.js and Spark come from
``web/node_modules`` (pinned by ``web/package-lock.json``) and are served by the app (no CDN).
"""

from app.web.install import install

__all__ = ["install"]
