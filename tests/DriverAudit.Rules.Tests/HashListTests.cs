using DriverAudit.Rules.Engine;
using DriverAudit.Rules.Lists;

namespace DriverAudit.Rules.Tests;

/// <summary>Hash-list text formats (plain, LOLDrivers CSV and JSON), hostile inputs, and the load hook.</summary>
public class HashListTests
{
    private const string A = "0000000000000000000000000000000000000000000000000000000000000001";
    private const string B = "00000000000000000000000000000000000000000000000000000000000000bb";
    private const string C = "00000000000000000000000000000000000000000000000000000000000000cc";
    private const string S1 = "1111111111111111111111111111111111111111";

    [Fact]
    public void Plain_list_with_comments_second_column_bom_and_sha1()
    {
        var text = $"\uFEFF# known bad\n\n{A.ToUpperInvariant()}  RTCore64.sys\r\n  {B} # inline comment\n{S1}\n";
        var list = HashListParser.Parse(text, out var error);
        Assert.Null(error);
        Assert.Equal(HashListFormat.Plain, HashListParser.Detect(text));
        Assert.Equal([A, B], list!.FileSha256.Order());
        Assert.Equal([A, B], list.AuthentihashSha256.Order());
        Assert.Equal([S1], list.AuthentihashSha1);
    }

    [Theory]
    [InlineData("not-a-hash\n", "line 1: 'not-a-hash' is not a SHA-256")]
    [InlineData("# ok\nd41d8cd98f00b204e9800998ecf8427e\n", "line 2:")]          // MD5: no such fact
    [InlineData("0000000000000000000000000000000000000000000000000000000000000001x\n", "line 1:")]
    public void Plain_list_refuses_lines_that_are_not_hashes(string text, string fragment)
    {
        Assert.Null(HashListParser.Parse(text, out var error));
        Assert.Contains(fragment, error);
    }

    private const string CsvHeader =
        "\"Id\",\"Author\",\"Created\",\"Command\",\"Description\",\"Usecase\",\"Category\",\"Privileges\",\"MitreID\",\"OperatingSystem\",\"Resources\",\"Driver Description\",\"Person\",\"Handle\",\"Detection\",\"KnownVulnerableSamples_MD5\",\"KnownVulnerableSamples_SHA1\",\"KnownVulnerableSamples_SHA256\",\"KnownVulnerableSamples_Publisher\",\"KnownVulnerableSamples_Date\",\"KnownVulnerableSamples_Company\",\"KnownVulnerableSamples_Description\",\"KnownVulnerableSamples_Authentihash_MD5\",\"KnownVulnerableSamples_Authentihash_SHA1\",\"KnownVulnerableSamples_Authentihash_SHA256\",\"Verified\",\"Tags\"";

    private static string CsvRow(string sha256, string authSha1, string authSha256, string description = "x") =>
        $"\"id\",\"me\",\"2023-01-09\",\"sc.exe create x\",\"{description}\",\"Elevate\",\"vulnerable driver\",\"kernel\",\"T1068\",\"Windows 10\",\"['https://x']\",\"\",\"\",\"\",\"[]\",\"\",\"\",\"{sha256}\",\"\",\"\",\"\",\"\",\"\",\"{authSha1}\",\"{authSha256}\",\"TRUE\",\"RTCore64.sys\"";

    [Fact]
    public void LolDrivers_csv_reads_the_sha256_and_authentihash_columns()
    {
        var text = CsvHeader + "\r\n"
            + CsvRow($"{A}, {B.ToUpperInvariant()}", S1, $"{C}, -", description: "multi\nline \"\"quoted\"\", with comma") + "\r\n"
            + CsvRow("", "", "") + "\r\n";
        Assert.Equal(HashListFormat.LolDriversCsv, HashListParser.Detect(text));
        var list = HashListParser.Parse(text, out var error);
        Assert.Null(error);
        Assert.Equal([A, B], list!.FileSha256.Order());
        Assert.Equal([C], list.AuthentihashSha256);
        Assert.Equal([S1], list.AuthentihashSha1);
    }

    [Theory]
    [InlineData("\"KnownVulnerableSamples_SHA256\"\n\"unterminated\n", "line 2: unterminated quoted field")]
    [InlineData("\"KnownVulnerableSamples_SHA256\"\n\"a\"b\n", "line 2: unexpected character after a closing quote")]
    public void LolDrivers_csv_malformed_is_an_error_with_its_line(string text, string fragment)
    {
        Assert.Null(HashListParser.Parse(text, out var error));
        Assert.Contains(fragment, error);
    }

    [Fact]
    public void LolDrivers_csv_short_rows_and_extra_columns_are_tolerated()
    {
        var text = "Id,KnownVulnerableSamples_SHA256,KnownVulnerableSamples_Authentihash_SHA256\nx\ny," + A + "," + C + ",extra,columns\n";
        var list = HashListParser.Parse(text, out var error);
        Assert.Null(error);
        Assert.Equal([A], list!.FileSha256);
        Assert.Equal([C], list.AuthentihashSha256);
    }

    [Fact]
    public void LolDrivers_json_reads_samples_and_skips_odd_shapes()
    {
        var text = $$$"""
            [
              {"Id": "1", "Tags": ["RTCore64.sys"], "KnownVulnerableSamples": [
                {"Filename": "RTCore64.sys", "SHA256": "{{{A}}}", "Authentihash": {"MD5": "x", "SHA1": "{{{S1}}}", "SHA256": "{{{C}}}"}},
                {"SHA256": "{{{B.ToUpperInvariant()}}}", "Authentihash": "not an object"},
                {"SHA256": 12, "Authentihash": {"SHA256": "-"}},
                "not an object"
              ]},
              {"Id": "2"},
              {"Id": "3", "KnownVulnerableSamples": {"SHA256": "{{{C}}}"}},
              42
            ]
            """;
        Assert.Equal(HashListFormat.LolDriversJson, HashListParser.Detect(text));
        var list = HashListParser.Parse(text, out var error);
        Assert.Null(error);
        Assert.Equal([A, B], list!.FileSha256.Order());
        Assert.Equal([C], list.AuthentihashSha256);
        Assert.Equal([S1], list.AuthentihashSha1);
    }

    [Theory]
    [InlineData("[{\"KnownVulnerableSamples\": [}]", "invalid JSON")]
    [InlineData("{\"drivers\": []}", "an array of drivers")]
    public void LolDrivers_json_malformed_is_an_error(string text, string fragment)
    {
        Assert.Null(HashListParser.Parse(text, out var error));
        Assert.Contains(fragment, error);
    }

    [Fact]
    public void Deeply_nested_json_is_refused_not_a_stack_overflow()
    {
        var text = new string('[', 100_000) + new string(']', 100_000);
        Assert.Null(HashListParser.Parse(text, out var error));
        Assert.Contains("invalid JSON", error);
    }

    [Fact]
    public void Random_bytes_never_throw()
    {
        var random = new Random(1234);
        for (int i = 0; i < 500; i++)
        {
            var chars = new char[random.Next(0, 300)];
            const string alphabet = "\"',\r\n[]{}:#0123456789abcdefKnownVulnerableSamples_SHA256 \t";
            for (int j = 0; j < chars.Length; j++) chars[j] = alphabet[random.Next(alphabet.Length)];
            var text = (i % 3 == 0 ? "KnownVulnerableSamples_SHA256\n" : i % 3 == 1 ? "[" : "") + new string(chars);
            var list = HashListParser.Parse(text, out var error);
            Assert.True((list is null) != (error is null));
        }
    }

    // --- the load hook ---

    private static string HashRule(string feature, string id = "TST001", string name = "TestRule") =>
        RuleText.Make($"hash: {{{feature}}}", id: id, name: name);

    [Fact]
    public void Lists_are_resolved_through_the_hook_once_per_reference_and_used()
    {
        var calls = new List<(string, string)>();
        var options = new RuleLoadOptions
        {
            ResolveList = (reference, rulePath) =>
            {
                calls.Add((reference, rulePath));
                return reference == "@vuln" ? new ListContent(A + "\n", "vuln.txt") : null;
            },
        };
        var set = RuleSet.Load(
        [
            new RuleSource("a.yaml", HashRule("sha256-in: \"@vuln\"")),
            new RuleSource("b.yaml", HashRule("authentihash-in: \"@vuln\"", id: "TST002", name: "Other")),
        ], options);
        Assert.Equal([("@vuln", "a.yaml")], calls);
        Assert.Empty(set.Warnings);
        var found = set.Evaluate(new FakeFacts { FileSha256Value = A, AuthenticodeSha256Value = B });
        Assert.Equal(["TST001"], found.Select(m => m.Rule.Id));
        Assert.Equal(["TST002"], set.Evaluate(new FakeFacts { FileSha256Value = B, AuthenticodeSha256Value = A }).Select(m => m.Rule.Id));
    }

    [Fact]
    public void A_missing_named_list_is_an_empty_list_and_a_warning()
    {
        var set = RuleSet.Load([new RuleSource("r0.yaml", HashRule("sha256-in: \"@known-vulnerable\""))]);
        var warning = Assert.Single(set.Warnings);
        Assert.Equal(("r0.yaml", RuleText.MatchLine, 21), (warning.File, warning.Line, warning.Column));
        Assert.Contains("--hash-list known-vulnerable=FILE", warning.Message);
        Assert.Empty(set.Evaluate(new FakeFacts { FileSha256Value = A }));
    }

    [Fact]
    public void A_missing_or_malformed_file_list_is_an_error_at_the_reference()
    {
        var errors = Assert.Throws<RuleLoadException>(() => RuleSet.Load(
            [new RuleSource("r0.yaml", HashRule("sha256-in: lists/bad.txt"))],
            new RuleLoadOptions { ResolveList = (_, _) => null })).Errors;
        RuleText.HasError(errors, RuleText.MatchLine, 21, "hash list 'lists/bad.txt' not found");

        errors = Assert.Throws<RuleLoadException>(() => RuleSet.Load(
            [new RuleSource("r0.yaml", HashRule("sha256-in: lists/bad.txt"))],
            new RuleLoadOptions { ResolveList = (_, _) => new ListContent("# header\nnope\n", "lists/bad.txt") })).Errors;
        RuleText.HasError(errors, RuleText.MatchLine, 21, "hash list lists/bad.txt: line 2: 'nope' is not a SHA-256");

        errors = RuleText.Errors(HashRule("sha256-in: lists/bad.txt"));
        RuleText.HasError(errors, RuleText.MatchLine, 21, "no list resolver is configured");
    }

    [Fact]
    public void File_references_are_resolved_per_rule_file()
    {
        var calls = new List<(string, string)>();
        RuleSet.Load(
        [
            new RuleSource("x/a.yaml", HashRule("sha256-in: v.txt")),
            new RuleSource("y/b.yaml", HashRule("sha256-in: v.txt", id: "TST002", name: "Other")),
        ], new RuleLoadOptions { ResolveList = (r, p) => { calls.Add((r, p)); return new ListContent(A, r); } });
        Assert.Equal([("v.txt", "x/a.yaml"), ("v.txt", "y/b.yaml")], calls);
    }
}
