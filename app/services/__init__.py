"""Application services: the glue between the API/CLI and the models and renderer packages."""
