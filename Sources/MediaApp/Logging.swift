import Logging

/// How every command logs: to standard error, at the configured level.
public enum MediaLogging {
    /// Bootstraps the logging system once per process and returns the root logger.
    public static func bootstrap(level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "mediagw")
    }
}
