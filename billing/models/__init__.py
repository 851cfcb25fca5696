"""Billing data, one module per concern: prices (the catalog with effective dates, negotiated overrides), rollups
(hourly and daily, latency histograms), GPU pools and their hourly cost, attribution rules, alerts (budgets,
anomaly rules, latency SLOs, the alerts they raised and their deliveries) and recommendations. Every model is
importable from `billing.models`, as migrations and the rest of the code expect."""

from billing.models.alerts import (  # noqa: F401
    DEFAULT_THRESHOLDS,
    MAX_THRESHOLD_PERCENT,
    Alert,
    AlertChannels,
    AnomalyRule,
    Budget,
    Delivery,
    LatencySlo,
    default_thresholds,
    validate_email_list,
    validate_thresholds,
    validate_time_zone,
)
from billing.models.attribution import AttributionRule  # noqa: F401
from billing.models.gpu import GpuCostHour, GpuPool  # noqa: F401
from billing.models.limits import BudgetCounter, BudgetRefusal  # noqa: F401
from billing.models.prices import CATALOG_START, PER_TOKEN, Price, PriceOverride, PriceSource  # noqa: F401
from billing.models.recommendations import Recommendation  # noqa: F401
from billing.models.rollups import (  # noqa: F401
    DailyCallerSpend,
    DailyEndUserSpend,
    DailyErrorType,
    DailyModelLatency,
    DailyProductLatency,
    DailyRollup,
    DailySessionSpend,
    DailyTeamModelRollup,
    DailyTeamModelSpend,
    DailyTeamSpend,
    HourlyModelLatency,
    HourlyProductLatency,
    HourlyRollup,
    HourlySlowCall,
    LatencyHistograms,
    ModelLatency,
    ProductLatency,
    RollupDims,
    RollupState,
    WeeklyEndUserSpend,
    WeeklyModelLatency,
    WeeklyProductLatency,
    WeeklyTeamModelSpend,
)
