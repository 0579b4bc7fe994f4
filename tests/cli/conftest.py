from tests.api.conftest import seeded_dir  # noqa: F401 - the store seeded through the pipeline
