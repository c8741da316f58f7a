using DriverAudit.Scanner.Cli;
using DriverAudit.Scanner.RulePack;
using Xunit;

namespace DriverAudit.Scanner.Tests.RulePack;

/// <summary><c>driveraudit rules docs</c>: pages and README table, deterministic, and the committed copies current.</summary>
public sealed class RuleDocsTests
{
    private static string Normalize(string text) => text.Replace("\r\n", "\n", StringComparison.Ordinal);

    private static (string Docs, string Readme) Generate(TempDir t)
    {
        var readme = Path.Combine(t.Path, "README.md");
        File.Copy(Path.Combine(RepoPaths.Root, "README.md"), readme);
        var docs = Path.Combine(t.Path, "docs", "rules");
        var r = CliRunner.Run(t.Path, "rules", "docs", "--out", "docs/rules", "--readme", "README.md");
        Assert.True(r.ExitCode == 0, r.Stderr);
        return (docs, readme);
    }

    private static string TableOf(string readme)
    {
        int begin = readme.IndexOf(RuleDocs.ReadmeBegin, StringComparison.Ordinal);
        int end = readme.IndexOf(RuleDocs.ReadmeEnd, StringComparison.Ordinal);
        Assert.True(begin >= 0 && end > begin, "README has no generated rule table");
        return readme[begin..(end + RuleDocs.ReadmeEnd.Length)];
    }

    /// <summary>Fails when a rule changed and `driveraudit rules docs --out docs/rules --readme README.md` was not run.</summary>
    [Fact]
    public void Committed_docs_and_readme_table_are_current()
    {
        using var t = new TempDir();
        var (docs, readme) = Generate(t);
        var committed = Path.Combine(RepoPaths.Root, "docs", "rules");
        const string Hint = "; run: dotnet run --project src/Scanner -- rules docs --out docs/rules --readme README.md";

        var expected = Directory.EnumerateFiles(docs).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        var actual = Directory.EnumerateFiles(committed).Where(RuleDocs.IsGenerated).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.True(expected.SequenceEqual(actual), $"docs/rules holds [{string.Join(", ", actual)}], expected [{string.Join(", ", expected)}]{Hint}");
        foreach (var name in expected)
            Assert.True(Normalize(File.ReadAllText(Path.Combine(docs, name!))) == Normalize(File.ReadAllText(Path.Combine(committed, name!))),
                $"docs/rules/{name} is stale{Hint}");

        Assert.True(Normalize(TableOf(File.ReadAllText(readme))) == Normalize(TableOf(File.ReadAllText(Path.Combine(RepoPaths.Root, "README.md")))),
            "the README rule table is stale" + Hint);
    }

    [Fact]
    public void Pages_and_table_carry_the_rule_metadata_and_links()
    {
        using var t = new TempDir();
        var (docs, readme) = Generate(t);
        var page = File.ReadAllText(Path.Combine(docs, "DA5004.md"));
        Assert.StartsWith(RuleDocs.GeneratedMarker + "\n# DA5004: Control Flow Guard not enabled\n", page);
        Assert.Contains("| name | `NoControlFlowGuard` |", page);
        Assert.Contains("| level | note |", page);
        Assert.Contains("| precision | high |", page);
        Assert.Contains("| security-severity | 3.0 |", page);
        Assert.Contains("| tags | `security`, `hardening` |", page);
        Assert.Contains("[CWE-693](https://cwe.mitre.org/data/definitions/693.html)", page);
        Assert.Contains("## How to fix\n\nCompile and link with `/guard:cf`", page);
        Assert.Contains("```yaml\nmatch:\n  not:\n    characteristic: cfg\n```", page);
        Assert.Contains("- matches `tests/fixtures/bin/x64/pool_modern.sys`", page);
        Assert.Contains("- <https://learn.microsoft.com/en-us/cpp/build/reference/guard-enable-control-flow-guard>", page);
        Assert.DoesNotContain("\r", page);

        var table = TableOf(File.ReadAllText(readme));
        Assert.Contains("| [DA1001](docs/rules/DA1001.md) | UntaggedPoolAllocation | warning | Untagged pool allocation |", table);
        // The rest of the README is untouched.
        var original = File.ReadAllText(Path.Combine(RepoPaths.Root, "README.md"));
        Assert.Equal(Normalize(original[..original.IndexOf(RuleDocs.ReadmeBegin, StringComparison.Ordinal)]),
            Normalize(File.ReadAllText(readme)[..File.ReadAllText(readme).IndexOf(RuleDocs.ReadmeBegin, StringComparison.Ordinal)]));
    }

    [Fact]
    public void Generation_is_deterministic_and_replaces_its_own_table()
    {
        using var t = new TempDir();
        var (docs, readme) = Generate(t);
        var first = Directory.EnumerateFiles(docs).Order(StringComparer.Ordinal).Select(File.ReadAllText).ToList();
        var firstReadme = File.ReadAllText(readme);
        Generate2(t);
        Assert.Equal(first, Directory.EnumerateFiles(docs).Order(StringComparer.Ordinal).Select(File.ReadAllText).ToList());
        Assert.Equal(firstReadme, File.ReadAllText(readme)); // one table, not two

        static void Generate2(TempDir t) =>
            Assert.Equal(0, CliRunner.Run(t.Path, "rules", "docs", "--out", "docs/rules", "--readme", "README.md").ExitCode);
    }

    [Fact]
    public void Stale_generated_pages_are_removed_and_other_files_kept()
    {
        using var t = new TempDir();
        var docs = t.Dir("out");
        File.WriteAllText(Path.Combine(docs, "DA9998.md"), RuleDocs.GeneratedMarker + "\n# old rule\n");
        File.WriteAllText(Path.Combine(docs, "notes.md"), "# hand-written\n");
        Assert.Equal(0, CliRunner.Run(t.Path, "rules", "docs", "--out", "out").ExitCode);
        Assert.False(File.Exists(Path.Combine(docs, "DA9998.md")));
        Assert.True(File.Exists(Path.Combine(docs, "notes.md")));
        Assert.True(File.Exists(Path.Combine(docs, "DA1001.md")));
    }

    [Fact]
    public void A_readme_without_markers_is_exit_2_and_nothing_is_written()
    {
        using var t = new TempDir();
        File.WriteAllText(Path.Combine(t.Path, "README.md"), "# no table here\n");
        var r = CliRunner.Run(t.Path, "rules", "docs", "--out", "docs/rules", "--readme", "README.md");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(RuleDocs.ReadmeMarker, r.Stderr);
        Assert.False(Directory.Exists(Path.Combine(t.Path, "docs")));
    }

    [Fact]
    public void Table_links_follow_the_docs_folder_relative_to_the_readme()
    {
        using var t = new TempDir();
        var readme = Path.Combine(t.Dir("sub"), "README.md");
        File.WriteAllText(readme, "intro\n\n" + RuleDocs.ReadmeMarker + "\n\noutro\n");
        Assert.Equal(0, CliRunner.Run(t.Path, "rules", "docs", "--out", "pages", "--readme", "sub/README.md").ExitCode);
        var text = File.ReadAllText(readme);
        Assert.Contains("| [DA1001](../pages/DA1001.md) |", text);
        Assert.StartsWith("intro\n\n" + RuleDocs.ReadmeBegin + "\n", text);
        Assert.EndsWith(RuleDocs.ReadmeEnd + "\n\noutro\n", text);
    }
}
