"""``[revocation]`` as the configuration file has it, checked against the rest of the file."""

from __future__ import annotations

from gateway.config import Config
from gateway.errors import ConfigurationError
from gateway.security.revocation.config import RevocationConfig


def revocation_config(config: Config) -> RevocationConfig | None:
    """``[revocation]`` (``gateway.security.revocation``); None: revocation is not checked.

    It needs ``partners.directory``: what it checks are the partner certificates of the CPAs."""
    document = config.tables.data if config.tables is not None else {}
    found = RevocationConfig.from_toml(document, base=config.path.parent, source=str(config.path))
    if found is not None and config.partners.directory is None:
        raise ConfigurationError(
            f"{config.path}: [revocation] needs partners.directory: revocation is checked for "
            "the partner certificates of the CPAs"
        )
    return found
