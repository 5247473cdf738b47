import MediaCore
import MediaIngest
import Testing

@Suite struct IngestManifestTests {
    @Test func csvRowsWithQuotingAndDefaultsAreRead() throws {
        let text = """
            path,owner_id,context,context_id,private
            a.jpg,u1,post,p1,
            "dir, with comma/b.jpg",u1,POST,p1,true
            "say ""cheese"".jpg",u2,message,m1,0

            """
        let (items, errors) = try IngestManifest.parse(text, format: .csv)
        #expect(errors.isEmpty)
        #expect(items.map(\.path) == ["a.jpg", "dir, with comma/b.jpg", "say \"cheese\".jpg"])
        #expect(items[0].destination == IngestDestination(ownerID: "u1", context: .post, contextID: "p1", isPrivate: false))
        #expect(
            items[1].destination.isPrivate && items[1].destination.key == items[0].destination.key.replacingOccurrences(of: "public", with: "private")
        )
        #expect(items[2].destination.context == .message)
    }

    @Test func columnsMayComeInAnyOrderAndPrivateIsOptional() throws {
        let (items, errors) = try IngestManifest.parse("context_id,context,path,owner_id\nc9,community,x.png,o\n", format: .csv)
        #expect(errors.isEmpty && items.count == 1)
        #expect(items[0].destination == IngestDestination(ownerID: "o", context: .community, contextID: "c9"))
    }

    @Test func badRowsAreReportedWithTheirLineAndTheRestIsKept() throws {
        let text = """
            path,owner_id,context,context_id,private
            ok.jpg,u,post,p,false
            ,u,post,p,false
            x.jpg,u,blog,p,false
            x.jpg,bad id,post,p,false
            x.jpg,u,post,p,perhaps
            x.jpg,u,post,p,false,more
            """
        let (items, errors) = try IngestManifest.parse(text, format: .csv)
        #expect(items.map(\.path) == ["ok.jpg"])
        #expect(errors.map(\.line) == [3, 4, 5, 6, 7])
        #expect(errors[1].message.contains("context must be one of"))
        #expect(errors[2].message.contains("owner_id"))
    }

    @Test func aHeaderWithoutTheRequiredColumnsRefusesTheFile() {
        #expect(throws: MediaError.self) { try IngestManifest.parse("file,owner\na,b\n", format: .csv) }
    }

    @Test func jsonLinesAcceptBooleansAndReportLinesThatAreNotObjects() throws {
        let text = """
            {"path": "a.mp4", "owner_id": "u", "context": "post", "context_id": "p", "private": true}
            [1, 2]
            {"path": "b.mp3", "owner_id": "u", "context": "profile", "context_id": 42}
            """
        let (items, errors) = try IngestManifest.parse(text, format: .jsonLines)
        #expect(items.count == 2 && items[0].destination.isPrivate && items[1].destination.contextID == "42")
        #expect(errors.map(\.line) == [2])
    }

    @Test func formatsComeFromTheExtension() {
        #expect(IngestManifest.format(ofPath: "x/rows.CSV") == .csv)
        #expect(IngestManifest.format(ofPath: "rows.jsonl") == .jsonLines)
        #expect(IngestManifest.format(ofPath: "rows.ndjson") == .jsonLines)
        #expect(IngestManifest.format(ofPath: "rows.txt") == nil)
    }

    @Test func directoryContextIDsAreStableValidAndDistinct() throws {
        let first = IngestDirectory.contextID(for: "2019/summer/a.jpg")
        #expect(first == IngestDirectory.contextID(for: "2019/summer/a.jpg"))
        #expect(first != IngestDirectory.contextID(for: "2019/summer/b.jpg"))
        try ExternalID.validate(first, name: "context_id")
    }
}
