"""The run-spec model: what a YAML run spec may say, validated by pydantic.

Unknown keys are errors everywhere (``extra="forbid"``): a typo must never pass silently.
Durations accept ``600``, ``600s``, ``10m``, ``2h5m`` and are stored as float seconds.
Secrets (``target.auth.bearer``, headers listed in ``secret_headers``) are ``SecretStr`` so
they never appear in ``repr``; interpolated secret values are redacted by the loader.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    StringConstraints,
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from phase5site.runspec import hosts, syntax
from phase5site.runspec.durations import parse_duration

DURATION_PATTERN = r"^\d+(\.\d+)?((ms|s|m|h|d)(\d+(\.\d+)?(ms|s|m|h|d))*)?$"
Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": DURATION_PATTERN},
            ],
            "description": "Seconds, or a duration such as 600s, 10m, 2h5m, 1.5s.",
        }
    ),
]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check_slug(name: str) -> str:
    """Names become folder names and page slugs, so they stay simple."""
    if not _NAME.match(name):
        raise ValueError(f"must be letters, digits, '-', '_' or '.' (got {name!r})")
    return name


def _at_most(limit: float, shown: str, unit: str = "") -> AfterValidator:
    return AfterValidator(lambda value: syntax.check_at_most(value, limit, shown, unit))


def _duration_at_most(limit_s: float, shown: str) -> AfterValidator:
    return _at_most(limit_s, shown, "s")


def _kinds(annotation: Any) -> set[type]:
    """The scalar types an annotation accepts: ``int | None`` -> {int, NoneType}."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _kinds(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_kinds(arg) for arg in typing.get_args(annotation)))
    if origin is Literal:
        return {type(arg) for arg in typing.get_args(annotation)}
    return {annotation} if isinstance(annotation, type) else set()


class _Model(BaseModel):
    # allow_inf_nan=False: a rate or threshold of .inf / .nan (YAML floats) is a spec error,
    # not an OverflowError when the plan is computed.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """pydantic reads ``rate: true`` as 1 req/s and ``observe: 1`` as true; YAML says
        which of the two the user wrote, so a mix-up is an error, not a guess."""
        if info.field_name is None:
            return value
        kinds = _kinds(cls.model_fields[info.field_name].annotation)
        if isinstance(value, bool) and kinds & {int, float} and bool not in kinds:
            raise ValueError(f"must be a number, not true or false (got {value!r})")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and kinds & {bool} \
                and not kinds & {int, float}:
            raise ValueError(f"must be true or false (got {value!r})")
        return value


HeaderName = Annotated[str, AfterValidator(syntax.check_header_name)]
HeaderValue = Annotated[str, AfterValidator(syntax.check_header_value)]


class RequestSloSpec(_Model):
    """Latency thresholds for one named request, judged on its own requests (client side,
    nearest rank, drops ranked above sent ones) beside the global SLO. Durations: write
    ``120ms``; a bare number is seconds, as everywhere in a spec."""

    p50: Duration | None = Field(None, gt=0, description="Threshold of this request's P50, e.g. 50ms.")
    p90: Duration | None = Field(None, gt=0, description="Threshold of this request's P90, e.g. 100ms.")
    p95: Duration | None = Field(None, gt=0, description="Threshold of this request's P95, e.g. 120ms.")
    p99: Duration | None = Field(None, gt=0, description="Threshold of this request's P99, e.g. 250ms.")


class RequestSpec(_Model):
    """One entry of the weighted request mix."""

    name: str = Field(description="Label of this request in results and charts.")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = Field(
        "GET", description="HTTP method."
    )
    path: str = Field(description="Path and query, starting with '/'.")
    weight: float = Field(1.0, gt=0, description="Relative share of this request in the mix.")
    headers: Annotated[dict[HeaderName, HeaderValue], AfterValidator(syntax.check_headers_size)] = Field(
        default_factory=dict,
        description="Extra request headers (RFC 9110 names and Latin-1 values; "
        f"at most {syntax.MAX_HEADER_BYTES} bytes in all).",
    )
    secret_headers: list[str] = Field(
        default_factory=list,
        description="Names of headers whose values are secrets (redacted everywhere).",
    )
    json_body: Any = Field(None, alias="json", description="JSON body sent with the request.")
    auth: Literal["bearer", "none"] = Field(
        "bearer",
        description="bearer: send target.auth.bearer as 'Authorization: Bearer ...' (when set); "
        "none: send this request without it (e.g. realistic 401s from the service's gate). "
        "An Authorization header of the request itself replaces the bearer.",
    )
    timed: bool | None = Field(
        None,
        description="Whether the service's HTTP metrics count this request (its server-side "
        "request counter and latency histogram). Default: the metrics profile's rule for the "
        "path (MetaSheet times /health, /api/plugins, /api/v2/hello, /api/v2/rpc-test, "
        "/internal/metrics and plugin routes; the embedded target counts every request). The "
        "report compares the client's count of timed requests with the server's count. Set "
        "false for a request the gate answers (no token).",
    )
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = Field(
        default_factory=list,
        description="HTTP statuses that are this request's correct answer besides 2xx/3xx, e.g. "
        "[401] for a request sent without a token on purpose or [404] for an unknown path: such "
        "an answer counts as ok (not as a client error, nor for the circuit breaker); the status "
        "is stored as answered.",
    )
    synthetic: bool = Field(
        False,
        description="A diagnostics request that is not production traffic (e.g. the development "
        "routes that move the cache and fallback counters): the report and the site label the "
        "run synthetic and name these requests.",
    )
    slo: RequestSloSpec | None = Field(
        None, description="Per-request latency thresholds, e.g. {p95: 120ms, p99: 250ms}; "
        "judged in report, JSON and JUnit beside the global SLO.")

    _path_on_the_wire = field_validator("path")(syntax.check_path)

    @model_validator(mode="after")
    def _secret_headers_exist(self) -> RequestSpec:
        missing = [name for name in self.secret_headers if name not in self.headers]
        if missing:
            raise ValueError(f"secret_headers names headers that are not set: {', '.join(missing)}")
        return self


def default_request_mix() -> list[RequestSpec]:
    return [
        RequestSpec(name="health", path="/health", weight=1),
        RequestSpec(name="hello", path="/api/v2/hello", weight=2),
        RequestSpec(name="plugins", path="/api/plugins", weight=2),
    ]


class AuthSpec(_Model):
    bearer: SecretStr | None = Field(
        None, description="Bearer token sent as 'Authorization: Bearer ...'. A secret."
    )


class FaultSpec(_Model):
    """A fault of the embedded target, switched on at ``at`` for ``duration``."""

    kind: Literal["error_burst", "latency_stall", "outage", "memory_growth"] = Field(
        description="error_burst: a share of 5xx; latency_stall: every request waits delay_ms; "
        "outage: connections refused; memory_growth: RSS grows by mb_per_s."
    )
    at: Duration = Field(0.0, description="Offset from the start of the run.")
    duration: Duration = Field(description="How long the fault lasts.")
    share: float = Field(0.5, ge=0, le=1, description="error_burst: share of requests answered 5xx.")
    delay_ms: float = Field(1000.0, ge=0, description="latency_stall: added wait per request.")
    mb_per_s: float = Field(10.0, ge=0, description="memory_growth: RSS growth rate.")


class EmbeddedSpec(_Model):
    """The bundled MetaSheet-like simulator, started on a free loopback port.

    It is a development instance of the real service (FEATURE_CACHE=true): cache hits come
    from the requests a load sends to /api/cache-test/warm and /simulate, as in the service,
    so there is no hit-ratio knob (``cache_hit_ratio`` of older specs is refused)."""

    profile: Literal["metasheet"] = Field("metasheet", description="Which service to simulate.")
    seed: int = Field(1, description="Random seed of the simulator.")
    latency_scale: float = Field(1.0, gt=0, description="Multiplies every simulated latency.")
    faults: list[FaultSpec] = Field(default_factory=list, description="Scheduled faults.")
    disable_families: list[str] = Field(
        default_factory=list, description="Metric families the simulator must not export."
    )


class TargetSpec(_Model):
    base_url: str | None = Field(None, description="Base URL of the service under test.")
    embedded: EmbeddedSpec | None = Field(None, description="Use the embedded simulator instead.")
    auth: AuthSpec = Field(default_factory=AuthSpec, description="Authentication.")
    allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts the run may contact: the target's base_url, the Prometheus URL and the "
        "metrics page (the embedded target excepted); a spec naming any other host is refused, "
        "and the runner checks again before a byte is sent.",
    )
    timeout: Duration = Field(5.0, gt=0, description="Per-request timeout.")
    client: Literal["httptools", "raw", "httpx"] = Field(
        "httptools",
        description="HTTP client of the load workers: httptools (a lean HTTP/1.1 keep-alive "
        "client on llhttp, a fraction of httpx's CPU per request, so pacing stays exact on a "
        "small runner; raw is an older name for it) or httpx (one AsyncClient per worker). "
        "Both verify TLS; see bench/http_capacity.py.",
    )
    requests: list[RequestSpec] = Field(
        default_factory=default_request_mix, min_length=1, description="Weighted request mix."
    )
    workers: Literal["auto"] | Annotated[int, Field(ge=1, le=64)] = Field(
        "auto",
        description="Load worker processes: each paces and sends its segment of the schedule "
        "(request k goes to worker k mod N) in its own event loop. auto = enough for the "
        "highest phase rate (about 2,000 req/s each), at most the cores less one, at most "
        "the concurrency.",
    )
    max_body_bytes: Annotated[int, Field(ge=1024, le=1024**3)] = Field(
        16 * 1024 * 1024,
        description="Longest response body a load worker reads (bytes, 1 KiB to 1 GiB): a "
        "longer one ends its request as body_too_large, a transport failure, and its "
        "connection is closed, so a broken or hostile server cannot fill the worker's memory. "
        "Bodies are only counted, never kept.",
    )
    max_backlog: Annotated[int, Field(ge=1, le=10_000_000)] | None = Field(
        None,
        description="Most requests that may wait for a free slot in a phase; beyond it, or "
        "when not sent by the end of its phase, a request is dropped and counts as a failure "
        "(default: max(30 s of sends, 10,000)).",
    )
    max_generator_lag: Duration = Field(
        0.010, gt=0,
        description="A window whose load-generator own send lag (slot free, yet sent late) has "
        "a p99 above this is generator-limited: its client latency is INVALID, not a verdict "
        "on the service.",
    )

    _base_url_syntax = field_validator("base_url")(syntax.check_url)

    @model_validator(mode="after")
    def _one_target_and_allowed_host(self) -> TargetSpec:
        if (self.base_url is None) == (self.embedded is None):
            raise ValueError("give exactly one of base_url or embedded")
        if self.base_url is not None:
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"base_url must be an http(s) URL with a host (got {self.base_url!r})")
            if parts.hostname not in self.allow_hosts:
                allowed = ", ".join(self.allow_hosts) or "none"
                raise ValueError(
                    f"host {parts.hostname!r} of base_url is not in allow_hosts (allowed: {allowed})"
                )
        names = [request.name for request in self.requests]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"request names must be unique (repeated: {', '.join(duplicates)})")
        return self

    @property
    def host(self) -> str | None:
        return urlsplit(self.base_url).hostname if self.base_url else None


class MetricsAuthSpec(_Model):
    """The metrics page's own credential (MetaSheet's ``METRICS_SCRAPE_TOKEN``).

    It is a different credential from the load JWT: a hardened service accepts only this
    value on ``/metrics/prom`` and refuses the API token there. It is sent to the metrics
    page only (``metrics.scrape_url``, or ``metrics.url`` with source scrape), never to the
    target or to Prometheus. At most one of the two ways of sending it.
    """

    bearer: SecretStr | None = Field(
        None, description="Metrics token sent as 'Authorization: Bearer ...' to the metrics page "
        "only, e.g. ${METRICS_SCRAPE_TOKEN}. A secret.")
    x_metrics_token: SecretStr | None = Field(
        None, description="Metrics token sent as 'X-Metrics-Token: ...' to the metrics page only, "
        "e.g. ${METRICS_SCRAPE_TOKEN}. A secret.")

    @model_validator(mode="after")
    def _at_most_one(self) -> MetricsAuthSpec:
        if self.bearer is not None and self.x_metrics_token is not None:
            raise ValueError("give one of bearer or x_metrics_token, not both (the page checks one value)")
        return self

    def headers(self) -> dict[str, str]:
        """The request headers carrying the token (empty when none is configured).

        >>> MetricsAuthSpec(x_metrics_token="m3trics-t0ken").headers()
        {'X-Metrics-Token': 'm3trics-t0ken'}
        >>> MetricsAuthSpec().headers()
        {}
        """
        if self.bearer is not None:
            return {"Authorization": f"Bearer {self.bearer.get_secret_value()}"}
        if self.x_metrics_token is not None:
            return {"X-Metrics-Token": self.x_metrics_token.get_secret_value()}
        return {}

    @property
    def configured(self) -> bool:
        return self.bearer is not None or self.x_metrics_token is not None


class MetricsSpec(_Model):
    source: Literal["prometheus", "scrape", "both", "none"] = Field(
        "none",
        description="prometheus: query the Prometheus HTTP API; scrape: diff two scrapes of the "
        "service's metrics page; both: sample with both and store both; none: client side only.",
    )
    url: str | None = Field(None, description="Prometheus base URL (prometheus, both).")
    scrape_url: str | None = Field(
        None,
        description="Metrics page to scrape (scrape, both); defaults to the embedded target's "
        "/metrics/prom, or base_url + /metrics/prom.",
    )
    selector: str = Field("", description="Label selector applied to every query, e.g. {job=\"x\"}.")
    profile: Literal["metasheet", "metasheet-2025"] = Field(
        "metasheet",
        description="Column-to-query mapping: metasheet (the current service) or metasheet-2025 "
        "(the service of the 2025 script outputs, which still exported three more families).",
    )
    overrides: dict[str, str] = Field(
        default_factory=dict,
        description="Per CSV v3 column: a PromQL expression (prometheus) or metric name (scrape).",
    )
    timeout: Duration = Field(5.0, gt=0, description="Timeout of one query or scrape.")
    auth: MetricsAuthSpec = Field(
        default_factory=MetricsAuthSpec,
        description="Credential of the metrics page itself (source scrape or both); none by "
        "default. The load JWT (target.auth.bearer) is never sent to a metrics URL, and this "
        "token never to the target or to Prometheus.",
    )

    _url_syntax = field_validator("url", "scrape_url")(syntax.check_url)

    @model_validator(mode="after")
    def _url_for_source(self) -> MetricsSpec:
        if self.source in ("prometheus", "both") and not self.url:
            raise ValueError(f"source {self.source!r} needs url (the Prometheus base URL)")
        if self.auth.configured and self.source not in ("scrape", "both"):
            raise ValueError(
                f"metrics.auth is sent to the metrics page only, and source {self.source!r} reads no "
                "page: remove it, or use source scrape or both (Prometheus API credentials are not supported)")
        return self


class FlagsSpec(_Model):
    """Feature flags of the service under test, as the old .env.phase5 had them."""

    COUNT_CACHE_MISS_AS_FALLBACK: bool = Field(
        False, description="Count cache misses as effective fallback."
    )
    ENABLE_PHASE5_INTERNAL: bool = Field(False, description="Must be false in production.")
    ENABLE_FALLBACK_TEST: bool = Field(False, description="Must be false in production.")


class PhaseFlagsSpec(_Model):
    """Per-phase flag overrides (for the fallback scenario); unset keys inherit."""

    COUNT_CACHE_MISS_AS_FALLBACK: bool | None = None
    ENABLE_PHASE5_INTERNAL: bool | None = None
    ENABLE_FALLBACK_TEST: bool | None = None


# The SLO categories of DESIGN.md, in order (slo.categories defines them; a test keeps the
# two lists equal). Here so that the spec can name them without importing slo.
SLO_CATEGORY_NAMES: tuple[str, ...] = (
    "success_rate", "error_rate", "latency_p95", "latency_p99", "effective_fallback", "memory",
    "cache_hit_rate", "plugin_reload_success", "snapshot_success",
)


class CategoryPolicySpec(_Model):
    """Whether a category must have evidence for GO, and why not when it need not.

    A mandatory category the load cannot move (no production request reaches the cache, say)
    can never be judged; ``required: false`` lets such a run reach GO, but only with a written
    justification, which the report, the site and the SLO document print beside the category.
    """

    required: bool | None = Field(
        None,
        description="true: the category needs a verdict for GO (NA or not exercised is NO-GO); "
        "false: it does not block GO when NA or not exercised (a FAIL still does). "
        "Default: as DESIGN.md marks it (mandatory or optional).",
    )
    justification: str | None = Field(
        None,
        description="Why the category is not required (needed with required: false); printed "
        "next to the category in the report, the site and the SLO document.",
    )

    @model_validator(mode="after")
    def _justified(self) -> CategoryPolicySpec:
        if self.required is False and not (self.justification or "").strip():
            raise ValueError(
                "required: false needs a justification: say why this load cannot or need not "
                "exercise the category (it is printed next to the category)"
            )
        return self


class SloSpec(_Model):
    """Release criteria. Ratios are 0-1; latencies in milliseconds; memory in MiB."""

    success_rate_min: float = Field(0.98, ge=0, le=1, description="HTTP success rate (2xx/3xx).")
    error_rate_max: float = Field(0.01, ge=0, le=1, description="Errors (4xx+5xx+transport).")
    latency_p95_ms: float = Field(150.0, gt=0, description="P95 latency.")
    latency_p99_ms: float = Field(250.0, gt=0, description="P99 latency.")
    effective_fallback_max: float = Field(0.05, ge=0, le=1, description="Effective fallback ratio.")
    rss_mean_mb_max: float = Field(500.0, gt=0, description="Mean resident memory.")
    cache_hit_rate_min: float = Field(0.80, ge=0, le=1, description="Pooled cache hit rate.")
    plugin_reload_success_min: float = Field(0.95, ge=0, le=1, description="Optional category.")
    snapshot_success_min: float = Field(0.99, ge=0, le=1, description="Optional category.")
    min_valid_sample_share: float = Field(
        0.8, gt=0, le=1,
        description="Evidence a server-side PASS needs: every sample of the phase valid, or at least "
        "this share of them with each other one's NA explained by a recorded reason; below it the "
        "category is 'insufficient data' (NO-GO when mandatory). 1 = every sample must be valid.",
    )
    categories: dict[str, CategoryPolicySpec] = Field(
        default_factory=dict,
        description="Per category (success_rate, error_rate, latency_p95, latency_p99, "
        "effective_fallback, memory, cache_hit_rate, plugin_reload_success, snapshot_success): "
        "{required: false, justification: '...'} for one this load cannot exercise, or "
        "{required: true} to make an optional one block GO.",
    )

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: dict[str, CategoryPolicySpec]) -> dict[str, CategoryPolicySpec]:
        unknown = sorted(set(value) - set(SLO_CATEGORY_NAMES))
        if unknown:
            raise ValueError(f"unknown category {', '.join(map(repr, unknown))} "
                             f"(known: {', '.join(SLO_CATEGORY_NAMES)})")
        return value

    def policy(self, category: str) -> CategoryPolicySpec:
        """The spec's policy for a category (an empty one when the spec says nothing)."""
        return self.categories.get(category) or CategoryPolicySpec()


class CircuitBreakerSpec(_Model):
    enabled: bool = Field(True, description="Stop the load when the service suffers.")
    error_rate: float = Field(0.02, gt=0, le=1, description="Trip above this error share.")
    effective_fallback: float = Field(
        0.08, gt=0, le=1, description="Trip above this effective fallback ratio (server, per sample)."
    )
    window: Duration = Field(30.0, gt=0, description="Rolling client-side window.")
    min_requests: int = Field(50, ge=1, description="Requests needed in the window to judge.")


class PhaseSpec(_Model):
    name: str = Field(description="Phase name, unique in the spec (warmup, baseline, extended...).")
    rate: Annotated[float, _at_most(syntax.MAX_RATE, f"{syntax.MAX_RATE:g} requests/s")] = Field(
        gt=0, description=f"Requests per second (open model), at most {syntax.MAX_RATE:g}.")
    concurrency: Annotated[int, _at_most(syntax.MAX_CONCURRENCY, f"{syntax.MAX_CONCURRENCY} in flight")] = Field(
        ge=1, description=f"Most requests in flight at once, at most {syntax.MAX_CONCURRENCY}.")
    duration: Annotated[Duration, _duration_at_most(syntax.MAX_PHASE_S, "7d")] | None = Field(
        None, gt=0, description="Length (at most 7d); or give samples x interval.")
    samples: Annotated[int, _at_most(syntax.MAX_SAMPLES, str(syntax.MAX_SAMPLES))] | None = Field(
        None, ge=1, description=f"Number of samples, at most {syntax.MAX_SAMPLES}.")
    interval: Annotated[Duration, _duration_at_most(syntax.MAX_INTERVAL_S, "1d")] | None = Field(
        None, gt=0, description="Length of one sample window, at most 1d.")
    observe: bool = Field(True, description="Sample metrics during this phase.")
    enabled: bool = Field(True, description="A disabled phase is skipped.")
    flags: PhaseFlagsSpec = Field(default_factory=PhaseFlagsSpec, description="Flag overrides.")

    _name_is_slug = field_validator("name")(_check_slug)

    @model_validator(mode="after")
    def _duration_or_samples(self) -> PhaseSpec:
        if (self.samples is None) != (self.interval is None):
            raise ValueError("samples and interval go together")
        if self.duration is None and self.samples is None:
            raise ValueError("give duration, or samples and interval")
        if self.planned_duration_s > syntax.MAX_PHASE_S:
            raise ValueError(f"samples x interval must be at most 7d (got {self.planned_duration_s:g}s)")
        if self.duration is not None and self.samples is not None:
            planned = self.samples * (self.interval or 0)
            if abs(planned - self.duration) > 1e-9:
                raise ValueError(
                    f"duration ({self.duration:g}s) disagrees with samples x interval ({planned:g}s)"
                )
        return self

    @property
    def planned_duration_s(self) -> float:
        if self.samples is not None and self.interval is not None:
            return self.samples * self.interval
        assert self.duration is not None
        return self.duration

    @property
    def expected_requests(self) -> int:
        return int(self.rate * self.planned_duration_s)


class RunSpec(_Model):
    version: Literal[1] = Field(description="Version of the run-spec language.")
    name: str = Field(description="Name of the run; results go to results/<name>-<timestamp>/.")
    description: str = Field("", description="Free text shown on the run page.")
    tags: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=40)]] = Field(
        default_factory=list,
        description="Labels for the site. A run tagged `test` is listed apart and does not count toward the "
        "release decision (imported legacy runs are tagged `import` and left out the same way), unless "
        "`phase5site build --release-run` names it.")
    target: TargetSpec
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    flags: FlagsSpec = Field(default_factory=FlagsSpec)
    slo: SloSpec = Field(default_factory=SloSpec)
    circuit_breaker: CircuitBreakerSpec = Field(default_factory=CircuitBreakerSpec)
    phases: list[PhaseSpec] = Field(min_length=1)

    _name_is_slug = field_validator("name")(_check_slug)

    @model_validator(mode="after")
    def _unique_phase_names(self) -> RunSpec:
        names = [phase.name for phase in self.phases]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"phase names must be unique (repeated: {', '.join(duplicates)})")
        return self

    @field_validator("metrics")
    @classmethod
    def _metrics_hosts_allowed(cls, metrics: MetricsSpec, info: ValidationInfo) -> MetricsSpec:
        # target.allow_hosts covers the metrics URLs too (runspec.hosts); a field validator,
        # so the error points at the spec's metrics section. base_url: TargetSpec checks it.
        target = info.data.get("target")
        refused = hosts.refusal(hosts.metrics_urls(metrics), target.allow_hosts) if target else None
        if refused:
            raise ValueError(refused)
        return metrics

    def enabled_phases(self, only: list[str] | None = None) -> list[PhaseSpec]:
        """Phases to run, in order: enabled ones, or exactly those named in ``only``."""
        if only:
            return [phase for phase in self.phases if phase.name in only]
        return [phase for phase in self.phases if phase.enabled]

    def effective_flags(self, phase: PhaseSpec) -> FlagsSpec:
        overrides = {k: v for k, v in phase.flags.model_dump().items() if v is not None}
        return self.flags.model_copy(update=overrides)
