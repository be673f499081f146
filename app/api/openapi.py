"""OpenAPI descriptions of the request bodies the routes parse themselves (streamed multipart uploads)."""

from __future__ import annotations

from app.schemas import BatchManifest, ReconstructionOptions

_OPTIONS_DOC = (
    "JSON object, all fields optional: "
    + ", ".join(ReconstructionOptions.model_fields)
    + " (schema: ReconstructionOptions)"
)

_MULTIPART = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {
                "files": {
                    "type": "array",
                    "items": {"type": "string", "format": "binary"},
                    "description": "images (JPEG, PNG, WebP), or one zip of images, or one video",
                },
                "options": {"type": "string", "description": _OPTIONS_DOC},
            },
            "required": ["files"],
        }
    }
}

UPLOAD_BODY = {"requestBody": {"required": True, "content": _MULTIPART}}

BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {
                            "type": "string",
                            "format": "binary",
                            "description": "one zip; each top-level folder is a scene (its images/ or files)",
                        },
                        "options": {"type": "string", "description": _OPTIONS_DOC},
                    },
                    "required": ["files"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "folders": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "scene folders relative to ONEPASS_BATCH_ROOT",
                        },
                        "options": {"type": "object", "description": _OPTIONS_DOC},
                    },
                    "required": ["folders"],
                    "additionalProperties": False,
                    "title": BatchManifest.__name__,
                }
            },
        },
    }
}
