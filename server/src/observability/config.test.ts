import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../config.js';

const parse = (env: Record<string, string>) => parseConfig({ NODE_ENV: 'test', ...env }).observability;

describe('observability configuration', () => {
  it('is all off by default: no tracing, no metrics, no slow logs', () => {
    expect(parse({})).toEqual({ tracing: undefined, metrics: undefined, slowProcedureMs: 0, slowQueryMs: 0 });
  });

  it('traces when an OTLP endpoint is set, with the standard protocol and sampler variables', () => {
    expect(parse({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }).tracing).toEqual({
      url: 'http://127.0.0.1:4318/v1/traces',
      protocol: 'http/protobuf',
      sampler: 'parentbased_always_on',
      samplerArg: 1,
      batch: { scheduledDelayMillis: 5_000, exportTimeoutMillis: 30_000, maxQueueSize: 2_048, maxExportBatchSize: 512 },
    });
    expect(
      parse({
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.1',
        OTEL_BSP_SCHEDULE_DELAY: '200',
        OTEL_BSP_MAX_QUEUE_SIZE: '100',
      }).tracing,
    ).toMatchObject({
      url: 'http://collector:4318/v1/traces',
      protocol: 'http/json',
      sampler: 'parentbased_traceidratio',
      samplerArg: 0.1,
      batch: { scheduledDelayMillis: 200, maxQueueSize: 100, maxExportBatchSize: 100 },
    });
  });

  it('stays off with OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none, endpoint or not', () => {
    expect(parse({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' }).tracing).toBeUndefined();
    expect(parse({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_TRACES_EXPORTER: 'none' }).tracing).toBeUndefined();
  });

  it('refuses gRPC, unknown samplers and ratios outside 0..1, naming the variable', () => {
    expect(() => parse({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(
      /OTEL_EXPORTER_OTLP_PROTOCOL: expected http\/protobuf or http\/json/,
    );
    expect(() => parse({ OTEL_TRACES_SAMPLER: 'sometimes' })).toThrow(/OTEL_TRACES_SAMPLER/);
    expect(() => parse({ OTEL_TRACES_SAMPLER_ARG: '2' })).toThrow(/OTEL_TRACES_SAMPLER_ARG/);
  });

  it('serves metrics only when METRICS_TOKEN or METRICS_PORT is set, the listener on loopback by default', () => {
    expect(parse({ METRICS_PORT: '9464' }).metrics).toEqual({ token: undefined, port: 9464, host: '127.0.0.1' });
    expect(parse({ METRICS_TOKEN: 'x'.repeat(32) }).metrics).toEqual({ token: 'x'.repeat(32), port: undefined, host: '127.0.0.1' });
  });

  it('refuses a short METRICS_TOKEN without repeating it, and METRICS_PORT equal to PORT', () => {
    let error: unknown;
    try {
      parse({ METRICS_TOKEN: 'short-secret' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('METRICS_TOKEN: expected at least 16 characters');
    expect((error as Error).message).not.toContain('short-secret');
    expect(() => parse({ PORT: '4000', METRICS_PORT: '4000' })).toThrow(/METRICS_PORT: must differ from PORT/);
  });
});
