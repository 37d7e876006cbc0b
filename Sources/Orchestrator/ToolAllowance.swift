import Store

/// How much output one tool result may carry, and which limit set it: `policy.tool_output_cap`, or
/// what is left of the turn's or the job's budget (see `ToolOutputBudget`).
///
/// Output is counted as it is encoded in JSON — in the tool result the model gets and in every event
/// that records it — so a control byte counts six (`\u0000`), a quote, backslash or newline two, an
/// invalid UTF-8 sequence three (U+FFFD). Output beyond the allowance is cut at a character boundary,
/// and the result says so in `truncation`, naming the limit. Pure; safe from any thread.
struct ToolAllowance: Sendable, Equatable {
    /// Encoded bytes of output the result may carry.
    let bytes: Int
    /// The policy key that set `bytes`, with how, for the result's `truncation` message.
    let limit: String

    /// Output text cut to its share of the allowance.
    struct Cut {
        let text: String
        /// The text's encoded size.
        let escapedCount: Int
        let complete: Bool
    }

    /// A command's stdout and stderr cut to fit the allowance together. Each keeps what it needs when
    /// both fit; otherwise stderr (where the error usually is) keeps up to half, or more when stdout
    /// needs less than the other half, and stdout has the rest.
    func fit(stdout: [UInt8], stderr: [UInt8]) -> (stdout: Cut, stderr: Cut) {
        let out = cut(stdout, within: bytes)
        let err = cut(stderr, within: bytes)
        if out.complete, err.complete, out.escapedCount + err.escapedCount <= bytes { return (out, err) }
        let errorShare = min(err.escapedCount, max(bytes / 2, bytes - out.escapedCount))
        let error = cut(stderr, within: errorShare)
        return (cut(stdout, within: bytes - error.escapedCount), error)
    }

    /// A file's content cut to fit the allowance.
    func fit(_ content: [UInt8]) -> Cut {
        cut(content, within: bytes)
    }

    private func cut(_ bytes: [UInt8], within budget: Int) -> Cut {
        let prefix = JSON.escapedPrefix(of: bytes, within: budget)
        return Cut(text: prefix.text, escapedCount: prefix.escapedCount, complete: prefix.complete)
    }

    /// What a cut result says about it: which output was cut, how much there was and how much was
    /// kept, and the limit. `parts` are (name, bytes received, bytes of it kept) of each output.
    func truncation(_ parts: [(name: String, received: Int, kept: Int)]) -> String {
        let what = parts.map { "\($0.name) \($0.received) bytes, \($0.kept) kept" }.joined(separator: "; ")
        return
            "output cut to \(bytes) bytes as JSON-encoded (\(limit); a control byte counts 6, a quote, backslash or newline 2): \(what)"
    }
}
