// swift-tools-version:6.0
import PackageDescription

// Nonisolated async functions run on their caller's executor (SE-0461): the store's and the bus's
// async APIs then stay on the event loop when a loop-bound actor calls them, with no hop.
let callerIsolation: [SwiftSetting] = [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]

let package = Package(
    name: "agentd",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "agentd", targets: ["agentd"]),
        .executable(name: "agentd-sandbox", targets: ["agentd-sandbox"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"])]
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // Linux system calls glibc does not wrap (openat2), for the file tools.
        .systemLibrary(name: "CLinux"),
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(
            name: "Store",
            dependencies: ["CSQLite", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: callerIsolation
        ),
        .target(
            name: "Agents",
            dependencies: [
                "Store",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: callerIsolation
        ),
        // The loop runtime: the libuv event loop and what runs on it (timers, child processes, the Unix
        // socket server, HTTP on libcurl). The only importer of CLibUV and CCurl.
        .target(
            name: "Runtime",
            dependencies: ["CLibUV", "CCurl", "Store"],
            swiftSettings: callerIsolation
        ),
        // Transcripts of recorded jobs (text, Markdown, HTML), from the record alone.
        .target(
            name: "Transcript",
            dependencies: ["Store"],
            swiftSettings: callerIsolation
        ),
        // OpenTelemetry: finished jobs as GenAI spans, sent over OTLP/HTTP.
        .target(
            name: "Telemetry",
            dependencies: ["Runtime", "Store", .product(name: "Logging", package: "swift-log")],
            swiftSettings: callerIsolation
        ),
        // The engine: jobs, runners, the bus, backends, tools, the sandbox, the protocol and the daemon.
        .target(
            name: "Orchestrator",
            dependencies: [
                "Runtime", "Telemetry", "CLinux", "Store", "Agents", "Transcript",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: callerIsolation
        ),
        // The `agentd bench` workloads, measured against the built engine.
        .target(
            name: "Benchmarks",
            dependencies: ["Orchestrator", "Runtime", "Transcript", "Agents", "Store"],
            swiftSettings: callerIsolation
        ),
        // `agentd eval`: suites, running their tasks as jobs over the socket, ground truth, statistics, reports.
        .target(
            name: "Evaluation",
            dependencies: ["Orchestrator", "Agents", "Store"],
            swiftSettings: callerIsolation
        ),
        // The launcher of every sandboxed command, in C: the seccomp filter (libseccomp), the idmapped
        // workspace and the drop to the sandbox user, then bwrap. Installed beside `agentd`.
        .executableTarget(
            name: "agentd-sandbox",
            linkerSettings: [.linkedLibrary("seccomp")]
        ),
        .executableTarget(
            name: "agentd",
            dependencies: [
                "Orchestrator", "Benchmarks", "Evaluation", "Transcript", "Telemetry", "Runtime", "Agents", "Store",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The fuzz target: libFuzzer's when scripts/fuzz.sh builds it (`-sanitize=fuzzer,address -D LIBFUZZER`);
        // this build replays the inputs it is given (the corpus: seeds and regressions).
        .executableTarget(
            name: "agentd-fuzz",
            dependencies: ["CLibFuzzer", "Orchestrator", "Evaluation", "Runtime", "Agents", "Store"],
            path: "Tests/Fuzz",
            exclude: ["CLibFuzzer", "corpus", "fuzz.dict"]
        ),
        .systemLibrary(name: "CLibFuzzer", path: "Tests/Fuzz/CLibFuzzer"),
        // What more than one test target needs (a started loop, temporary directories, processes, a tmpfs to fill).
        .target(name: "TestSupport", dependencies: ["Runtime"], path: "Tests/TestSupport"),
        .testTarget(name: "StoreTests", dependencies: ["Store", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "AgentsTests", dependencies: ["Agents"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "Store", "TestSupport"]),
        .testTarget(name: "OrchestratorTests", dependencies: ["Orchestrator", "Runtime", "Telemetry", "Transcript", "TestSupport"]),
        .testTarget(name: "TranscriptTests", dependencies: ["Transcript", "Store"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Agents", "Orchestrator", "Store"]),
        .testTarget(name: "agentdTests", dependencies: ["agentd", "Orchestrator", "Runtime", "Transcript", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
