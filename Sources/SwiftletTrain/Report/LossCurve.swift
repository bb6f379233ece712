import Foundation

/// The loss history of a run, written as CSV and drawn as an SVG line chart.
public struct LossCurve: Sendable {
    public struct Point: Sendable, Equatable {
        public var step: Int
        public var trainingLoss: Float
        public var validationLoss: Float?
    }

    public private(set) var points: [Point] = []
    /// A horizontal reference line (e.g. the corpus's unigram entropy), with its label.
    public var reference: (value: Double, label: String)?

    public init() {}

    public mutating func append(_ report: StepReport) {
        points.append(Point(step: report.step, trainingLoss: report.loss, validationLoss: report.validationLoss))
    }

    /// The CSV header matching ``csvLine(_:)``.
    public static let csvHeader = "step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s"

    /// One report as a CSV line (an empty field where no validation loss was measured).
    public static func csvLine(_ r: StepReport) -> String {
        String(format: "%d,%.6f,%@,%.6g,%.6g,%.1f,%.2f", r.step, r.loss,
               r.validationLoss.map { String(format: "%.6f", $0) } ?? "", r.learningRate, r.gradientNorm,
               r.tokensPerSecond, r.elapsedSeconds)
    }

    /// An SVG chart: training loss (thin blue), validation loss (orange dots and line), reference line.
    public func svg(title: String, width: Int = 800, height: Int = 480) -> String {
        let left = 64.0, right = 24.0, top = 40.0, bottom = 48.0
        let w = Double(width) - left - right, h = Double(height) - top - bottom
        let steps = points.map(\.step)
        let maxStep = Double(max(1, steps.max() ?? 1)), minStep = Double(steps.min() ?? 0)
        var values = points.map { Double($0.trainingLoss) } + points.compactMap { $0.validationLoss.map(Double.init) }
        if let r = reference { values.append(r.value) }
        values = values.filter(\.isFinite)
        let lo = max(0, (values.min() ?? 0) - 0.1), hi = (values.max() ?? 1) + 0.1
        func x(_ s: Int) -> Double { left + (Double(s) - minStep) / max(1, maxStep - minStep) * w }
        func y(_ v: Double) -> Double { top + (hi - v) / max(1e-9, hi - lo) * h }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(f(left))" y="24" font-size="15">\(escape(title))</text>

        """
        // Axes, ticks and grid.
        s += "<line x1=\"\(f(left))\" y1=\"\(f(top + h))\" x2=\"\(f(left + w))\" y2=\"\(f(top + h))\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(top + h))\" stroke=\"black\"/>\n"
        for i in 0...5 {
            let v = lo + (hi - lo) * Double(i) / 5
            s += "<line x1=\"\(f(left))\" y1=\"\(f(y(v)))\" x2=\"\(f(left + w))\" y2=\"\(f(y(v)))\" stroke=\"#ddd\"/>"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(y(v) + 4))\" text-anchor=\"end\">\(String(format: "%.2f", v))</text>\n"
            let st = Int((minStep + (maxStep - minStep) * Double(i) / 5).rounded())
            s += "<text x=\"\(f(x(st)))\" y=\"\(f(top + h + 18))\" text-anchor=\"middle\">\(st)</text>\n"
        }
        s += "<text x=\"\(f(left + w / 2))\" y=\"\(f(Double(height) - 8))\" text-anchor=\"middle\">step</text>\n"
        s += "<text transform=\"translate(16 \(f(top + h / 2))) rotate(-90)\" text-anchor=\"middle\">loss (nats/token)</text>\n"
        if let r = reference {
            s += "<line x1=\"\(f(left))\" y1=\"\(f(y(r.value)))\" x2=\"\(f(left + w))\" y2=\"\(f(y(r.value)))\" stroke=\"gray\" stroke-dasharray=\"6 4\"/>"
            s += "<text x=\"\(f(left + w - 4))\" y=\"\(f(y(r.value) - 5))\" text-anchor=\"end\" fill=\"gray\">\(escape(r.label))</text>\n"
        }
        let train = points.filter { $0.trainingLoss.isFinite }.map { "\(f(x($0.step))),\(f(y(Double($0.trainingLoss))))" }
        if !train.isEmpty {
            s += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.2\" points=\"\(train.joined(separator: " "))\"/>\n"
        }
        let validation = points.compactMap { p in p.validationLoss.map { (p.step, Double($0)) } }.filter { $0.1.isFinite }
        if !validation.isEmpty {
            s += "<polyline fill=\"none\" stroke=\"#ff7f0e\" stroke-width=\"2\" points=\"\(validation.map { "\(f(x($0.0))),\(f(y($0.1)))" }.joined(separator: " "))\"/>\n"
            for (st, v) in validation { s += "<circle cx=\"\(f(x(st)))\" cy=\"\(f(y(v)))\" r=\"3\" fill=\"#ff7f0e\"/>" }
            s += "\n"
        }
        // Legend.
        let lx = left + w - 170
        s += "<line x1=\"\(f(lx))\" y1=\"\(f(top + 12))\" x2=\"\(f(lx + 24))\" y2=\"\(f(top + 12))\" stroke=\"#1f77b4\" stroke-width=\"2\"/>"
        s += "<text x=\"\(f(lx + 30))\" y=\"\(f(top + 16))\">training loss</text>\n"
        s += "<line x1=\"\(f(lx))\" y1=\"\(f(top + 30))\" x2=\"\(f(lx + 24))\" y2=\"\(f(top + 30))\" stroke=\"#ff7f0e\" stroke-width=\"2\"/>"
        s += "<text x=\"\(f(lx + 30))\" y=\"\(f(top + 34))\">validation loss</text>\n"
        s += "</svg>\n"
        return s
    }

    private func escape(_ t: String) -> String {
        t.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
