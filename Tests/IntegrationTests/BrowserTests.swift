import Foundation
import MediaTesting
import Testing

/// A real browser uploads to the gateway from a page of another origin: headless Chromium driven by
/// Selenium (`Tests/browser/browser_upload.py`) on `Samples/browser/index.html`, with fetch and with
/// XMLHttpRequest, then shows the negotiated 320-wide rendition; a page of an origin that is not allowed is
/// refused by the browser itself (the preflight gets no CORS headers) and stores nothing.
@Suite struct BrowserTests {
    @Test func aPageOfAnAllowedOriginUploadsAndShowsTheRenditionAndOthersAreRefused() async throws {
        let allowedPort = Int.random(in: 30_000..<35_000)
        let otherPort = allowedPort + 1
        let gateway = try await TestGateway.suite("Browser", ["MEDIAGW_CORS_ORIGINS": "http://127.0.0.1:\(allowedPort)"])
        let set = try await gateway.openSet()
        guard let stack = ProcessInfo.processInfo.environment["MEDIAGW_STACK_DIR"] else {
            throw TestFailure("MEDIAGW_STACK_DIR is not set: run through Deploy/local/stack test")
        }
        // kept for whoever wants to see what the browser showed
        let artifacts = URL(fileURLWithPath: stack).appendingPathComponent("artifacts")
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        let screenshot = artifacts.appendingPathComponent("browser-upload.png")
        try? FileManager.default.removeItem(at: screenshot)
        let photo = Corpus.root.appendingPathComponent("images/orientation-6.jpg").path
        let (status, output) = try await TestStack.run(
            stack + "/venv/bin/python",
            [
                TestStack.root.appendingPathComponent("Tests/browser/browser_upload.py").path, "--gateway", gateway.baseURL, "--set", set.id,
                "--token", set.token, "--file", photo, "--allowed-port", "\(allowedPort)", "--other-port", "\(otherPort)",
                "--screenshot", screenshot.path,
            ]
        )
        guard status == 0, let line = output.split(separator: "\n").last,
            let result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: [String: Any]]
        else { throw TestFailure("browser_upload.py failed (\(status)): \(output.suffix(3000))") }

        for mode in ["fetch", "xhr"] {
            let run = result[mode] ?? [:]
            #expect((run["status"] as? String)?.hasPrefix("ready") == true, "\(mode): \(run)")
            #expect(run["width"] as? Int == 320, "\(mode): the negotiated w320 rendition is shown, 320 pixels wide")
        }
        #expect(result["xhr"]?["progress_events"] as? Int ?? 0 >= 1, "XMLHttpRequest reported upload progress")
        #expect((result["refused"]?["status"] as? String)?.hasPrefix("error") == true, "\(result["refused"] ?? [:])")

        let listed = try await gateway.request(.GET, "/internal/v1/upload-sets/\(set.id)")
        #expect((listed.json["media"] as? [[String: Any]])?.count == 2, "the two allowed uploads, not the refused one")
        let png = try Data(contentsOf: screenshot)
        #expect(png.count > 1000 && png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]), "a screenshot was taken")
    }
}
