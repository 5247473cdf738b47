import MediaCore
import MediaHTTP
import Testing

@Suite struct CORSPolicyTests {
    @Test(arguments: ["https://app.example.org", "http://127.0.0.1:8443", "https://[::1]:9000", "http://xn--nw2a.example"])
    func anOriginIsASchemeAndAHostWithAnOptionalPort(_ origin: String) throws {
        try CORSPolicy(origins: [origin]).validate()
    }

    @Test(arguments: [
        "https://app.example.org/", "https://app.example.org/page", "ftp://files.example.org", "https://", "app.example.org",
        "https://app.example.org?x=1",
    ])
    func anythingElseIsRefusedAtStart(_ origin: String) {
        #expect {
            try CORSPolicy(origins: [origin]).validate()
        } throws: { error in
            (error as? ConfigurationError)?.message.contains("is not an origin") == true
        }
    }

    @Test func aWildcardStandsAloneAndWithoutCredentials() {
        #expect(throws: ConfigurationError.self) { try CORSPolicy(origins: ["*", "https://app.example.org"]).validate() }
        #expect(throws: ConfigurationError.self) { try CORSPolicy(origins: ["*"], allowCredentials: true).validate() }
    }
}
