using System.Text;
using System.Text.RegularExpressions;
using Xunit;

namespace DriverAudit.Scanner.Tests.EndToEnd;

/// <summary>
/// Every README shell example stays copy-paste true. Fenced <c>text</c> blocks that start with <c>$ </c> are transcripts:
/// each command runs in bash and its output (stdout and stderr, as a terminal shows them) must equal the lines under it.
/// Fenced <c>sh</c> blocks are commands: each must run without a usage error. Commands that need what a test cannot have
/// (the network, a global install, a Windows driver folder) are listed in <see cref="NotRunHere"/> with the reason;
/// a new README command that is neither runnable nor listed fails the test.
/// </summary>
public sealed partial class ReadmeExamplesTests
{
    /// <summary>README commands this test does not run, and why. Each must still appear in the README (no stale entries).</summary>
    private static readonly Dictionary<string, string> NotRunHere = new(StringComparer.Ordinal)
    {
        ["dotnet test"] = "the test suite itself",
        ["dotnet tool install --global DriverAudit"] = "needs nuget.org and installs for the user; .ci/run installs the packed tool into a scratch folder",
        ["dotnet pack src/Scanner -o nupkg && dotnet tool install --global --prerelease --add-source nupkg DriverAudit"] =
            "installs for the user; .ci/run runs the same pack and install with --tool-path and then driveraudit --version",
        ["dotnet pack src/Scanner -o nupkg-rid -p:ToolRid=linux-x64 && dotnet tool install --global --prerelease --add-source nupkg-rid DriverAudit"] =
            "installs for the user and ReadyToRun-compiles for one platform (minutes); .ci/run checks the portable pack and install",
        ["driveraudit scan --host \"$HOSTNAME\" --fail-on none -o \"$HOSTNAME.sarif\" C:/Windows/System32/drivers"] = "needs a Windows driver folder",
        ["driveraudit inventory --host \"$HOSTNAME\" -o \"$HOSTNAME.inventory.jsonl\" C:/Windows/System32/drivers"] = "needs a Windows driver folder",
        ["driveraudit merge logs/*.sarif logs/*.inventory.jsonl -o fleet.sarif --db fleet.sqlite"] = "needs the hosts' logs (MergeTests runs merge and the README's queries)",
        ["driveraudit scan --cache ~/.cache/driveraudit.sqlite --shard 2/4 --host store-a -o part2.sarif /mnt/driver-store"] = "needs a driver store at /mnt/driver-store",
    };

    /// <summary>The README runs the tool as <c>dotnet run --project src/Scanner --</c> too: the same program, run here from the build.</summary>
    private const string DotnetRun = "dotnet run --project src/Scanner -- ";

    private sealed record Block(int Line, string Language, IReadOnlyList<string> Lines);

    private static List<Block> Blocks()
    {
        var lines = File.ReadAllLines(Path.Combine(RepoPaths.Root, "README.md"));
        var blocks = new List<Block>();
        for (var i = 0; i < lines.Length; i++)
        {
            if (!lines[i].StartsWith("```", StringComparison.Ordinal)) continue;
            var language = lines[i][3..].Trim();
            var start = i + 1;
            var end = start;
            while (end < lines.Length && !lines[end].StartsWith("```", StringComparison.Ordinal)) end++;
            blocks.Add(new Block(start, language, lines[start..end]));
            i = end;
        }
        return blocks;
    }

    /// <summary>A scratch folder that looks like the checkout for the examples: <c>tests</c> and <c>src</c> linked, MEMORY.DMP written.</summary>
    private static TempDir Workspace(out string bin)
    {
        var t = new TempDir();
        File.CreateSymbolicLink(Path.Combine(t.Path, "tests"), Path.Combine(RepoPaths.Root, "tests"));
        File.CreateSymbolicLink(Path.Combine(t.Path, "src"), Path.Combine(RepoPaths.Root, "src"));
        // The README's dump: DumpBench's small.dmp, renamed (the same writer).
        File.WriteAllBytes(Path.Combine(t.Path, "MEMORY.DMP"), SmallFixtureDump.Write(RepoPaths.Fixture("x64", "")));
        bin = t.Dir(".bin");
        File.CreateSymbolicLink(Path.Combine(bin, "driveraudit"), Path.Combine(AppContext.BaseDirectory, "driveraudit"));
        return t;
    }

    /// <summary>Runs a bash script in <paramref name="folder"/> with the built driveraudit first on PATH; stdout and stderr interleaved.</summary>
    private static (int Exit, string Output) Bash(string folder, string bin, string script)
    {
        var run = ProcessRunner.Run("bash", ["--noprofile", "--norc", "-c", script], folder, new Dictionary<string, string?>
        {
            ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH"),
            ["HOME"] = Path.Combine(folder, ".home"), // examples that install into ~ (completions) stay in the scratch folder
            ["NO_COLOR"] = null,
        }, TimeSpan.FromMinutes(5));
        return (run.ExitCode, run.Stdout + run.Stderr);
    }

    private static string Runnable(string command) =>
        command.StartsWith(DotnetRun, StringComparison.Ordinal) ? "driveraudit " + command[DotnetRun.Length..] : command;

    [Fact]
    public void Transcripts_print_what_the_readme_shows()
    {
        var transcripts = Blocks().Where(b => b.Language == "text" && b.Lines.Count > 0 && b.Lines[0].StartsWith("$ ", StringComparison.Ordinal)).ToList();
        Assert.True(transcripts.Count >= 5, $"expected the README's transcripts, found {transcripts.Count}");
        using var t = Workspace(out var bin);
        var failures = new StringBuilder();
        foreach (var block in transcripts)
        {
            // One bash session per block, so `echo $?` sees the previous command; a marker line splits the outputs.
            var commands = new List<(string Command, List<string> Expected)>();
            foreach (var line in block.Lines)
            {
                if (line.StartsWith("$ ", StringComparison.Ordinal)) commands.Add((line[2..], []));
                else commands[^1].Expected.Add(line);
            }
            // `$?` is carried over the marker line, so `echo $?` sees the README's previous command. Each command's stderr goes
            // to its own file: a pipe buffers stdout, so only a terminal shows the two interleaved as the README does.
            var errors = Directory.CreateTempSubdirectory("driveraudit-readme-").FullName;
            var script = new StringBuilder("set +e\n__s=0\n");
            for (var i = 0; i < commands.Count; i++)
                script.Append(CultureInfo($"printf '\\n@@README-COMMAND@@\\n'; (exit $__s)\n{{ {Runnable(commands[i].Command)}\n}} 2>'{errors}/{i}'\n__s=$?\n"));
            var (_, output) = Bash(t.Path, bin, script.ToString());
            var outputs = output.Split("\n@@README-COMMAND@@\n")[1..];
            Assert.Equal(commands.Count, outputs.Length);
            for (var i = 0; i < commands.Count; i++)
            {
                var stderr = File.ReadAllText(Path.Combine(errors, i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                if (!Interleaves(commands[i].Expected, Lines(outputs[i]), Lines(stderr)))
                    failures.Append(CultureInfo($"README.md:{block.Line + 1}: `{commands[i].Command}` printed:\n{outputs[i].TrimEnd()}\n--- on stderr:\n{stderr.TrimEnd()}\n--- the README shows:\n{string.Join('\n', commands[i].Expected).TrimEnd()}\n\n"));
            }
            Directory.Delete(errors, recursive: true);
        }
        Assert.True(failures.Length == 0, failures.ToString());
    }

    private static List<string> Lines(string text) => [.. text.TrimEnd().Split('\n')];

    /// <summary>
    /// True when <paramref name="expected"/> (trailing blank lines aside) is stdout and stderr merged line by line, each in its
    /// own order, as a terminal shows them. Greedy is exact here: a line both could give is the same text either way only
    /// when the streams repeat each other's lines, which the tool never does.
    /// </summary>
    private static bool Interleaves(List<string> expected, List<string> stdout, List<string> stderr)
    {
        var want = expected.ToList();
        while (want.Count > 0 && want[^1].Trim().Length == 0) want.RemoveAt(want.Count - 1);
        if (stdout is [""]) stdout = [];
        if (stderr is [""]) stderr = [];
        int o = 0, e = 0;
        foreach (var line in want)
        {
            if (o < stdout.Count && stdout[o] == line) o++;
            else if (e < stderr.Count && stderr[e] == line) e++;
            else return false;
        }
        return o == stdout.Count && e == stderr.Count;
    }

    [Fact]
    public void Shell_blocks_run_or_are_listed_with_a_reason()
    {
        var commands = Blocks().Where(b => b.Language is "sh" or "bash" or "shell")
            .SelectMany(b => b.Lines.Select((l, i) => (Line: b.Line + i + 1, Text: l.Trim())))
            .Where(c => c.Text.Length > 0 && !c.Text.StartsWith('#'))
            .ToList();
        Assert.Contains(commands, c => c.Text.StartsWith(DotnetRun, StringComparison.Ordinal));
        foreach (var listed in NotRunHere.Keys)
            Assert.True(commands.Any(c => c.Text == listed), $"NotRunHere lists a command the README no longer has: {listed}");

        using var t = Workspace(out var bin);
        var failures = new StringBuilder();
        foreach (var (line, text) in commands.Where(c => !NotRunHere.ContainsKey(c.Text)))
        {
            Assert.True(text.StartsWith("driveraudit ", StringComparison.Ordinal) || text.StartsWith(DotnetRun, StringComparison.Ordinal)
                        || MkdirThenDriveraudit().IsMatch(text),
                $"README.md:{line}: `{text}` is neither runnable here nor listed in NotRunHere with a reason");
            var (exit, output) = Bash(t.Path, bin, Runnable(text));
            // 0, 1 (findings) and 3 (the deliberately broken fixtures) are the tool working; 2 is a usage error.
            if (exit is not (0 or 1 or 3) || UsageError().IsMatch(output))
                failures.Append(CultureInfo($"README.md:{line}: `{text}` exited {exit}:\n{output}\n"));
        }
        Assert.True(failures.Length == 0, failures.ToString());
        // The completion examples wrote their scripts where the shells look for them.
        foreach (var installed in new[] { ".local/share/bash-completion/completions/driveraudit", ".zsh/driveraudit.zsh", ".config/fish/completions/driveraudit.fish" })
            Assert.Contains("driveraudit", File.ReadAllText(Path.Combine(t.Path, ".home", installed)), StringComparison.Ordinal);
    }

    private static string CultureInfo(FormattableString s) => s.ToString(System.Globalization.CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^mkdir -p [^;&|]+ && driveraudit ")]
    private static partial Regex MkdirThenDriveraudit();

    [GeneratedRegex(@"internal error|Unrecognized command or argument|Required argument missing", RegexOptions.IgnoreCase)]
    private static partial Regex UsageError();
}
