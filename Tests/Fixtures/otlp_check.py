#!/usr/bin/env python3
"""Validates an OTLP/JSON trace export against the OTLP protobuf JSON mapping.

    python3 Tests/Fixtures/otlp_check.py FILE

Parses FILE with `google.protobuf.json_format.Parse(text, ExportTraceServiceRequest())` (package
`opentelemetry-proto`; unknown fields are errors) and prints one JSON object: the spans (name, ids in
hex, parent, kind, times, status code, attributes as {key: value}). Exits 1 with the parse error when
the file does not conform, 2 when opentelemetry-proto is not installed.
"""
import base64
import json
import sys

try:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
except ImportError as error:  # pragma: no cover
    print(f"opentelemetry-proto is not installed: {error}", file=sys.stderr)
    sys.exit(2)


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


HEX = set("0123456789abcdef")


def hex_ids_to_base64(document) -> None:
    """OTLP/JSON writes traceId / spanId / parentSpanId as hex, where the standard protobuf JSON mapping
    has base64 (the OTLP spec's one deviation). Checks the hex and rewrites it as the mapping expects,
    as an OTLP receiver does."""
    for rs in document.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key, size in (("traceId", 16), ("spanId", 8), ("parentSpanId", 8)):
                    if key not in span:
                        continue
                    value = span[key]
                    if len(value) != 2 * size or not set(value) <= HEX or set(value) == {"0"}:
                        raise ValueError(f"{key} {value!r} is not {size} bytes of lowercase hex (not all zero)")
                    span[key] = base64.b64encode(bytes.fromhex(value)).decode()


def main() -> int:
    document = json.load(open(sys.argv[1]))
    request = ExportTraceServiceRequest()
    try:
        hex_ids_to_base64(document)
        json_format.Parse(json.dumps(document), request)
    except (json_format.ParseError, ValueError) as error:
        print(f"not an ExportTraceServiceRequest: {error}", file=sys.stderr)
        return 1
    spans = []
    resources = []
    for rs in request.resource_spans:
        resources.append({a.key: value(a.value) for a in rs.resource.attributes})
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append({
                    "scope": ss.scope.name,
                    "name": s.name,
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "kind": s.kind,
                    "start": s.start_time_unix_nano,
                    "end": s.end_time_unix_nano,
                    "status": s.status.code,
                    "attributes": {a.key: value(a.value) for a in s.attributes},
                })
    print(json.dumps({"resources": resources, "spans": spans}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
