"""Online template mining: log messages -> templates (``Connection to <*> failed``) + parameters.

Public surface::

    from logwarden.processing.templates import TemplateMiner, MinerConfig, FileTemplateStore, HeaderFormat

    miner = TemplateMiner(MinerConfig(), on_new_template=print)
    match = miner.add("Connection to 10.0.0.1 failed after 3 retries")
    match.template      # "Connection to <*> failed after <*> retries"
    match.params        # ["10.0.0.1", "3"]
    match.template_id   # stable, deterministic id

See ``docs/templates.md`` for the multi-worker design and id stability.
"""
from logwarden.processing.templates.config import MinerConfig
from logwarden.processing.templates.evaluation import grouping_accuracy, normalize_template, parsing_accuracy
from logwarden.processing.templates.header import HeaderFormat
from logwarden.processing.templates.masking import DEFAULT_MASKS, Masker
from logwarden.processing.templates.miner import TemplateMiner
from logwarden.processing.templates.model import TemplateInfo, TemplateMatch
from logwarden.processing.templates.store import FileTemplateStore, TemplateStore

__all__ = [
    "DEFAULT_MASKS",
    "FileTemplateStore",
    "HeaderFormat",
    "Masker",
    "MinerConfig",
    "TemplateInfo",
    "TemplateMatch",
    "TemplateMiner",
    "TemplateStore",
    "grouping_accuracy",
    "normalize_template",
    "parsing_accuracy",
]
