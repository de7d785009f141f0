//! Trace ingestion: Alibaba, Meta, Jaeger, Zipkin and OTLP inputs; windowed online graph; industrial graph generators.
