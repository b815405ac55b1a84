"""The evaluation method (评标办法) of a tender, as pydantic models: what the agent sends, what is stored on the
tender (as JSON, points as decimal strings), what the evaluation side reads back, and what OpenAPI documents.

Two methods, told apart by `method`:
- `comprehensive` (综合评估法): scored criteria plus a price score; the criteria maxima and the price weight add up
  to 100 points. The price score follows one of two formulas, told apart by `rule` (ALGORITHMS.md §2):
  - `lowest_price`: benchmark = the lowest valid price, score = benchmark / price × price_weight;
  - `mean_benchmark`: benchmark B = mean of the valid prices (optionally without the highest and lowest) × K,
    and the score falls by E points for each 1% of deviation from B, never below 0.
- `lowest_price` (经评审的最低投标价法): the lowest evaluated price among compliant bids wins; no scoring.

Bad input is refused 422 `invalid_evaluation` naming the field, or `evaluation_total_not_100`. Pure, no I/O.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, Union

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, StrictBool, TypeAdapter,
                      ValidationError, WithJsonSchema, field_validator, model_validator)

from core.errors import Unprocessable

TOTAL_POINTS = Decimal("100")
MAX_CRITERIA = 40
CRITERION_NAME_MAX = 100
# the mean-benchmark rule multiplies the mean by K; outside this band the "benchmark" is no longer the market
K_RANGE = (Decimal("0.80"), Decimal("1.20"))


def _points(value: Any) -> Decimal:
    """A decimal number with at most 2 places, sent as a string or an integer (never a binary float)."""
    if isinstance(value, (bool, float)):
        raise ValueError("must be a decimal number, sent as a string or an integer")
    try:
        number = Decimal(str(value).strip()) if isinstance(value, (str, int, Decimal)) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValueError("must be a decimal number")
    if number != number.quantize(Decimal("0.01"), rounding="ROUND_DOWN"):
        raise ValueError("has at most 2 decimal places")
    return number


Points = Annotated[Decimal, BeforeValidator(_points), PlainSerializer(str, return_type=str, when_used="json"),
                   WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d{1,2})?$",
                                   "description": "a decimal number with at most 2 places, e.g. \"40\" or \"12.5\""})]


class _Shape(BaseModel):
    # unknown keys are ignored, as they were before (a lowest-price method may carry stale criteria)
    model_config = ConfigDict(extra="ignore", frozen=True)


class Criterion(_Shape):
    """A scored criterion (评分因素) and its maximum points; `objective` ones must get the same score from all."""

    name: str = Field(min_length=1, max_length=CRITERION_NAME_MAX)
    max: Points = Field(gt=0, description="the criterion's maximum points, above zero")
    objective: StrictBool = Field(default=False, description="an objective criterion (客观分): one right score")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a criterion needs a name")
        return value.strip()


class LowestPriceBenchmark(_Shape):
    """Benchmark = the lowest valid bid price; price score = benchmark / price × price_weight (政府采购)."""

    rule: Literal["lowest_price"]


class MeanBenchmark(_Shape):
    """Benchmark B = mean of the valid prices × K; the price score falls by E points per 1% of deviation from B."""

    rule: Literal["mean_benchmark"]
    k: Points = Field(default=Decimal("1"), ge=K_RANGE[0], le=K_RANGE[1],
                      description="K, the benchmark factor, between 0.80 and 1.20")
    e: Points = Field(gt=0, description="E, the points lost for each 1% of deviation from the benchmark")
    drop_extremes: StrictBool = Field(default=False, description="drop the highest and the lowest price first "
                                                                 "(only when at least 5 valid prices remain)")


PriceFormula = Annotated[Union[LowestPriceBenchmark, MeanBenchmark], Field(discriminator="rule")]


class ComprehensiveScoring(_Shape):
    """综合评估法: criteria maxima plus the price weight make 100 points."""

    method: Literal["comprehensive"]
    criteria: list[Criterion] = Field(min_length=1, max_length=MAX_CRITERIA)
    price_weight: Points = Field(gt=0, description="points of the price score")
    price_formula: PriceFormula = Field(default_factory=lambda: LowestPriceBenchmark(rule="lowest_price"))
    aggregation: Literal["mean", "trimmed_mean"] = Field(
        default="mean", description="per criterion over the committee; a trimmed mean needs 7 or more members")
    decimals: Literal[2, 3] = Field(default=2, description="scores are rounded half-up to 2 or 3 places")

    @field_validator("decimals", mode="before")
    @classmethod
    def _decimals(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("scores keep 2 or 3 decimal places")
        return value

    @field_validator("criteria")
    @classmethod
    def _distinct(cls, criteria: list[Criterion]) -> list[Criterion]:
        seen: set[str] = set()
        for criterion in criteria:
            if criterion.name in seen:
                raise ValueError(f"criterion {criterion.name!r} appears twice")
            seen.add(criterion.name)
        return criteria

    @model_validator(mode="after")
    def _total(self) -> ComprehensiveScoring:
        total = sum((c.max for c in self.criteria), self.price_weight)
        if total != TOTAL_POINTS:
            raise Unprocessable(f"criteria maxima plus the price weight make {total}, not 100",
                                code="evaluation_total_not_100",
                                details={"field": "evaluation", "total": str(total), "expected": "100"})
        return self


class LowestEvaluatedPrice(_Shape):
    """经评审的最低投标价法: evaluated price = bid price + quantified adjustments; the lowest compliant one wins."""

    method: Literal["lowest_price"]


EvaluationMethod = Annotated[Union[ComprehensiveScoring, LowestEvaluatedPrice], Field(discriminator="method")]
_ADAPTER: TypeAdapter[ComprehensiveScoring | LowestEvaluatedPrice] = TypeAdapter(EvaluationMethod)
_TAGS = frozenset({"comprehensive", "lowest_price", "mean_benchmark"})


def evaluation_error(err: ValidationError) -> Unprocessable:
    """The first problem pydantic found, as 422 invalid_evaluation naming the field (e.g. evaluation.criteria.0.max)."""
    first = err.errors(include_url=False)[0]
    path = [str(part) for part in first["loc"] if part not in _TAGS]
    return Unprocessable(f"the evaluation method is not valid: {first['msg']}", code="invalid_evaluation",
                         details={"field": ".".join(["evaluation", *path]), "reason": first["msg"]})


def parse_evaluation(data: Any) -> ComprehensiveScoring | LowestEvaluatedPrice:
    """Check an evaluation method (a dict as sent, or a model); 422 invalid_evaluation / evaluation_total_not_100."""
    if isinstance(data, (ComprehensiveScoring, LowestEvaluatedPrice)):
        return data
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as err:
        raise evaluation_error(err) from err


def stored_evaluation(data: Any) -> dict[str, Any]:
    """The checked method as stored on the tender: JSON with points as decimal strings."""
    return parse_evaluation(data).model_dump(mode="json")
