import Foundation
import Prometheus

/// The server's Prometheus metrics (`GET /metrics`, text format 0.0.4).
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let promptTokens: Counter
    private let generatedTokens: Counter
    private let evaluatedPromptTokens: Counter
    private let tokensPerSecond: Gauge
    private let timeToFirstToken: DurationHistogram
    private let generationDuration: DurationHistogram
    let queueDepth: Gauge
    let busySlots: Gauge
    /// Paths that get a label of their own; anything else counts as "other" (no unbounded labels).
    private static let knownPaths: Set<String> = [
        "/", "/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/embeddings",
        "/tokenize", "/detokenize",
    ]

    init() {
        promptTokens = registry.makeCounter(descriptor: Self.metric("prompt_tokens", "total", "Prompt tokens received"))
        evaluatedPromptTokens = registry.makeCounter(descriptor: Self.metric("prompt_tokens_evaluated", "total", "Prompt tokens evaluated (the rest came from a slot's cache)"))
        generatedTokens = registry.makeCounter(descriptor: Self.metric("generated_tokens", "total", "Tokens generated"))
        tokensPerSecond = registry.makeGauge(descriptor: Self.metric("generation_tokens", "per_second", "Decode speed of the last finished generation"))
        timeToFirstToken = registry.makeDurationHistogram(descriptor: Self.metric("time_to_first_token", "seconds", "From the request's arrival (queue wait included) to its first generated token"),
            buckets: [.milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                      .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30)])
        generationDuration = registry.makeDurationHistogram(descriptor: Self.metric("request_duration", "seconds", "From a generation request's arrival to its last token"),
            buckets: [.milliseconds(100), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
                      .seconds(30), .seconds(60), .seconds(120)])
        queueDepth = registry.makeGauge(descriptor: Self.metric("queue", "depth", "Requests waiting for a generation slot"))
        busySlots = registry.makeGauge(descriptor: Self.metric("slots", "busy", "Generation slots in use"))
    }

    private static func metric(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "swiftlet", metricName: name, unitName: unit, helpText: help)
    }

    func countRequest(path: String, status: Int) {
        let label = Self.knownPaths.contains(path) ? path : "other"
        registry.makeCounter(descriptor: Self.metric("requests", "total", "HTTP requests answered"),
            labels: [("path", label), ("status", String(status))]).increment()
        if status >= 400 {
            registry.makeCounter(descriptor: Self.metric("errors", "total", "Requests answered with an error status"),
            labels: [("status", String(status))]).increment()
        }
    }

    /// A failure after the response has started (a stream cut short).
    func countStreamError(_ type: String) {
        registry.makeCounter(descriptor: Self.metric("stream_errors", "total", "Streamed generations that ended with an error or a client disconnect"),
            labels: [("type", type)]).increment()
    }

    func recordFirstToken(after duration: Duration) { timeToFirstToken.record(duration) }

    func recordGeneration(_ stats: GenerationStatisticsSummary, duration: Duration) {
        promptTokens.increment(by: Int64(stats.promptTokens))
        evaluatedPromptTokens.increment(by: Int64(stats.promptTokensEvaluated))
        generatedTokens.increment(by: Int64(stats.generatedTokens))
        if stats.tokensPerSecond > 0 { tokensPerSecond.set(stats.tokensPerSecond) }
        generationDuration.record(duration)
    }

    func text() -> String { registry.emitToString() }
}

/// What the metrics keep of a finished generation.
struct GenerationStatisticsSummary {
    var promptTokens: Int
    var promptTokensEvaluated: Int
    var generatedTokens: Int
    var tokensPerSecond: Double
}
