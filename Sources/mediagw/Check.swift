import ArgumentParser
import Foundation
import MediaApp

/// `mediagw check`: connect to Ceph and PostgreSQL and print what was found.
struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect to Ceph and PostgreSQL and print what was found; exit 1 if anything is wrong."
    )

    @OptionGroup var options: ConnectionOptions

    func run() async throws {
        do {
            let (configuration, logger) = try options.load(defaultLogLevel: .warning)
            let findings = await SystemCheck(configuration: configuration, logger: logger).run()
            for finding in findings {
                print("\(finding.ok ? "ok  " : "FAIL") \(finding.service): \(finding.message)")
            }
            if findings.contains(where: { !$0.ok }) {
                throw Failure("\(findings.filter { !$0.ok }.count) check(s) failed")
            }
        } catch let failure as Failure {
            Self.exit(with: failure)
        }
    }
}
