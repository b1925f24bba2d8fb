"""What every OpenAPI path-item module builds on: the model's schemas and shared responses.

An ``OpenAPIContext`` derives JSON Schemas from the loaded model: its real feature names,
count and kinds, the categories its encoders know, its class labels, and
``settings.max_rows``. Request schemas are exact where JSON Schema can say it (so a fuzzer's
schema-valid request is answered 200 and its invalid one 4xx) and narrower than the server
where it cannot: what else a route accepts is in its prose. It imports no route; the
path items live in one module per route module (``core``, ``kserve_v1``, ``open_inference``,
``mlflow``, ``admin``), gathered by ``document``. No HTTP here.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

from restpredict.asgi.responses import JSON, PROBLEM_JSON
from restpredict.model.loading import LoadedModel
from restpredict.model.schema import ColumnKind, Scalar, known_categories
from restpredict.settings import Settings

__all__ = [
    "OPENAPI_VERSION",
    "OpenAPIContext",
    "PathItems",
    "Schema",
    "ref",
    "response_headers",
]

OPENAPI_VERSION = "3.1.0"
Schema = dict[str, Any]
PathItems = dict[str, dict[str, Any]]

# The JSON numbers the server decodes: float64 (anything beyond is a 400). Not spelled as
# minimum/maximum, which would invite fuzzers to the edge of the range, where models overflow.
_NUMBER: Schema = {"type": "number", "format": "double"}
# A CSV number as the regex of the documented form: no exponent, at most 16 digits a side.
_CSV_NUMBER = r"-?(?:0|[1-9][0-9]{0,15})(?:\.[0-9]{1,16})?"
_CSV_PATTERN_CELLS = 1000

# What each error status means, in the words of /predict (problem+json) and the protocols.
PROBLEM_STATUSES = {
    400: "The body is not parseable JSON (syntax, encoding, NaN, numbers beyond float64).",
    413: "The body is larger than `max_body_bytes`.",
    415: "The Content-Type is not JSON (UTF-8).",
    422: "Well-formed JSON that does not fit the model: wrong feature count, names or types, "
    "too many rows, a value the model refuses.",
    500: "The model failed, or returned values JSON cannot carry (NaN, infinity).",
    503: "The model is not loaded and warmed up yet; retry shortly.",
}
PROTOCOL_STATUSES = {
    400: "Malformed JSON, or input that does not fit the model (the protocols' 400).",
    404: "The path names another model (or a version: one unversioned model is served).",
    413: "The body is larger than `max_body_bytes`.",
    415: "The content type or encoding is not supported.",
    500: "The model failed, or returned values JSON cannot carry.",
    503: "The model is not loaded and warmed up yet.",
}


def ref(name: str) -> Schema:
    """A reference to a schema in ``components.schemas``."""
    return {"$ref": f"#/components/schemas/{name}"}


@dataclass(frozen=True)
class OpenAPIContext:
    """What every path contributor needs: the model, the settings, and schemas made from them."""

    model: LoadedModel
    settings: Settings
    categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    nullable: frozenset[str] = frozenset()

    @classmethod
    def of(cls, model: LoadedModel, settings: Settings) -> OpenAPIContext:
        """Read the categories the model's encoders know once, for every schema below."""
        s = model.schema
        names = s.feature_names
        categories = known_categories(model.estimator, names) if names is not None else {}
        columns = names or tuple(f"x{i}" for i in range(s.n_features or 0))
        nullable = frozenset(c for j, c in enumerate(columns) if s.nullable(j))
        return cls(model, settings, categories, nullable)

    # Model input ---------------------------------------------------------------------------

    @property
    def named(self) -> bool:
        """True when the model was fitted with feature names (so it takes named records)."""
        return self.model.schema.feature_names is not None

    def columns(self) -> list[tuple[str, ColumnKind]]:
        """(name, kind) of every feature; positional names ``x0..`` when the model has none."""
        s = self.model.schema
        names = s.feature_names or tuple(f"x{i}" for i in range(s.n_features or 0))
        number: ColumnKind = "number"
        kinds = s.feature_kinds or (number,) * len(names)
        return list(zip(names, kinds))

    def value(self, name: str, kind: ColumnKind) -> Schema:
        """One feature value: a float64 number, or a string (one of the known categories);
        null too where the model takes a missing value."""
        null = name in self.nullable
        if kind == "number":
            return {**_NUMBER, "type": ["number", "null"]} if null else dict(_NUMBER)
        known: list[Any] = list(self.categories.get(name, ()))
        schema: Schema = {"type": ["string", "null"] if null else "string"}
        return {**schema, "enum": [*known, None] if null else known} if known else schema

    def row(self) -> Schema:
        """One positional row: exactly ``n_features`` values, typed column by column."""
        n = self.model.schema.n_features
        if n is None:
            return {"type": "array", "items": {"type": ["number", "string"]}, "minItems": 1}
        if self.model.schema.numeric_only and not self.nullable:
            return {"type": "array", "items": dict(_NUMBER), "minItems": n, "maxItems": n}
        return {
            "type": "array",
            "prefixItems": [self.value(name, kind) for name, kind in self.columns()],
            "items": False,
            "minItems": n,
            "maxItems": n,
        }

    def record(self) -> Schema:
        """One named row: every feature name, and (unless ignored) no others."""
        columns = self.columns()
        extra: Schema | bool = False
        if self.settings.unknown_columns == "ignore":
            extra = {"anyOf": [dict(_NUMBER), {"type": "string"}]}
        return {
            "type": "object",
            "properties": {name: self.value(name, kind) for name, kind in columns},
            "required": [name for name, _ in columns],
            "additionalProperties": extra,
        }

    def many(self, item: Schema) -> Schema:
        """A non-empty list of at most ``max_rows`` items."""
        return {"type": "array", "items": item, "minItems": 1, "maxItems": self.settings.max_rows}

    def table(self) -> Schema:
        """Rows, or (for models fitted with names) records: what the protocols call instances."""
        if not self.named:
            return self.many(ref("Row"))
        return {"oneOf": [self.many(ref("Row")), self.many(ref("Record"))]}

    def example_row(self) -> list[Scalar]:
        """The schema's example row (zeros, and a category the model knows for text)."""
        return list(self.model.schema.example or ())

    def example_record(self) -> dict[str, Scalar]:
        """The example row keyed by feature name."""
        return dict(zip((name for name, _ in self.columns()), self.example_row()))

    def csv_pattern(self) -> str:
        """A regex of CSV bodies the model takes: the header (named models), then rows."""
        cells = []
        for name, kind in self.columns():
            known = self.categories.get(name)
            if kind == "number":
                cell = _CSV_NUMBER
            elif known:
                cell = "(?:" + "|".join(re.escape(_csv_cell(v)) for v in known) + ")"
            else:
                cell = '[^,"\\r\\n0-9.+-][^,"\\r\\n]*'
            cells.append(f"(?:{cell})?" if name in self.nullable else cell)  # empty: missing
        row = ",".join(cells)
        header = ""
        if self.named:
            names = ",".join(_csv_cell(name) for name, _ in self.columns())
            header = f"(?:{re.escape(names)}\\r?\\n)?"
        more = f"(?:\\r?\\n{row}){{0,{self.csv_pattern_rows() - 1}}}"
        return f"^{header}{row}{more}(?:\\r?\\n)?$"

    def csv_pattern_rows(self) -> int:
        """The rows ``csv_pattern`` allows: ``max_rows``, unless that makes too big a regex.

        Validators compile a bounded repetition into a program whose size grows with it
        (jsonschema-rs refuses 4 columns x 1000 rows), so the pattern stays within about
        1000 cells and the description states the real limit.
        """
        per_row = max(1, len(self.columns()))
        return max(1, min(self.settings.max_rows, _CSV_PATTERN_CELLS // per_row))

    def csv_example(self) -> str:
        """The example row as CSV, under a header for named models."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if self.named:
            writer.writerow([name for name, _ in self.columns()])
        writer.writerow(self.example_row())
        return buffer.getvalue()

    # Model output --------------------------------------------------------------------------

    def label(self) -> Schema:
        """One prediction: a class label, a number (regressors) or a cluster id."""
        s = self.model.schema
        if s.classes is not None:
            return {"enum": list(s.classes), "description": "A class label."}
        if s.task == "regression":
            return {"type": "number", "description": "The predicted value."}
        if s.task in ("clustering", "outlier_detection"):
            return {"type": "integer", "description": "A cluster id, or 1/-1 for outliers."}
        return {"description": "Whatever the estimator's predict returns, per row."}

    def probabilities(self) -> Schema:
        """One row's class probabilities, keyed by class label."""
        p = {"type": "number", "minimum": 0, "maximum": 1}
        classes = self.model.schema.classes
        if classes is None:
            return {"type": "object", "additionalProperties": p}
        keys = [str(c) for c in classes]
        return {
            "type": "object",
            "properties": dict.fromkeys(keys, p),
            "required": keys,
            "additionalProperties": False,
        }

    # Responses -----------------------------------------------------------------------------

    def ok(
        self, description: str, schema: Schema, example: Any = None, media: str = JSON
    ) -> dict[str, Any]:
        """A 200 response with one media type (and the request id header)."""
        content: dict[str, Any] = {"schema": schema}
        if example is not None:
            content["example"] = example
        return {
            "description": description,
            "headers": response_headers(),
            "content": {media: content},
        }

    def predictions_ok(self) -> dict[str, Any]:
        """``{"predictions": [label, ...]}``: the 200 of KServe V1 and MLflow alike."""
        return self.ok(
            "One prediction per row.",
            {
                "type": "object",
                "properties": {"predictions": {"type": "array", "items": ref("Label")}},
                "required": ["predictions"],
            },
        )

    def problem(self, description: str) -> dict[str, Any]:
        """One problem+json error response, described in the route's own words."""
        return {
            "description": description,
            "headers": response_headers(),
            "content": {PROBLEM_JSON: {"schema": ref("Problem")}},
        }

    def errors(self, statuses: list[int], schema: str, media: str = JSON) -> dict[str, Any]:
        """Error responses, each with its protocol's error body."""
        words = PROBLEM_STATUSES if media == PROBLEM_JSON else PROTOCOL_STATUSES
        return {
            str(status): {
                "description": words[status],
                "headers": response_headers(),
                "content": {media: {"schema": ref(schema)}},
            }
            for status in statuses
        }


def response_headers() -> dict[str, Any]:
    """The headers every response carries (the request id)."""
    return {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}


def _csv_cell(value: Scalar) -> str:
    """One value as a CSV writer would write it (quoted when it must be)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([value])
    return buffer.getvalue()
