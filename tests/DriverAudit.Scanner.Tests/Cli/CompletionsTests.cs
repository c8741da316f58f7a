using DriverAudit.Scanner.Cli;
using Xunit;

namespace DriverAudit.Scanner.Tests.Cli;

/// <summary>
/// <c>driveraudit completions SHELL</c>: the bash script is run in bash with the words a user would have typed; the other
/// shells' scripts are syntax-checked by their shell when it is installed, and always checked to name every command.
/// </summary>
public sealed class CompletionsTests
{
    private static string Script(string shell)
    {
        var run = CliRunner.Run(RepoPaths.Root, "completions", shell);
        Assert.Equal(0, run.ExitCode);
        return run.Stdout;
    }

    private static ProcessRunner.Outcome Run(string program, params string[] args) => ProcessRunner.Run(program, args);

    [Fact]
    public void Bash_completes_commands_options_values_and_files()
    {
        using var t = new TempDir();
        var script = BashCompletion.WriteScript(t);
        Assert.Equal(0, Run("bash", "-n", script).ExitCode);

        Assert.Equal(["completions", "inspect", "inventory", "merge", "report", "rules", "scan", "tags"],
            BashCompletion.Complete(script, "driveraudit", "").Where(w => !w.StartsWith('-')).Order(StringComparer.Ordinal));
        Assert.Equal(["--format"], BashCompletion.Complete(script, "driveraudit", "scan", "--fo"));
        Assert.Equal(["json", "markdown", "sarif", "text"], BashCompletion.Complete(script, "driveraudit", "scan", "--format", "").Order(StringComparer.Ordinal));
        Assert.Equal(["json", "markdown", "sarif", "text"], BashCompletion.Complete(script, "driveraudit", "scan", "-f", "").Order(StringComparer.Ordinal));
        // Option values are not commands: the path stays "scan" after -o FILE.
        Assert.Equal(["--color"], BashCompletion.Complete(script, "driveraudit", "scan", "-o", "out.sarif", "--col"));
        Assert.Equal(["always", "auto", "never"], BashCompletion.Complete(script, "driveraudit", "scan", "--color", "").Order(StringComparer.Ordinal));
        Assert.Equal(["docs", "list", "show", "test", "validate"], BashCompletion.Complete(script, "driveraudit", "rules", "").Where(w => !w.StartsWith('-')).Order(StringComparer.Ordinal));
        Assert.Equal(["bash", "fish", "pwsh", "zsh"], BashCompletion.Complete(script, "driveraudit", "completions", "").Where(w => !w.StartsWith('-')).Order(StringComparer.Ordinal));
        // Paths: file names next to the options.
        File.WriteAllText(Path.Combine(t.Path, "driver.sys"), "");
        Assert.Contains(Path.Combine(t.Path, "driver.sys"), BashCompletion.Complete(script, "driveraudit", "scan", Path.Combine(t.Path, "dri")));
        Assert.Equal([Path.Combine(t.Path, "driver.sys")], BashCompletion.Complete(script, "driveraudit", "scan", "--baseline", Path.Combine(t.Path, "dri")));
        // Every option of scan, as the command defines it, is offered.
        var scanOptions = BashCompletion.Complete(script, "driveraudit", "scan", "-");
        foreach (var option in ScanCommand.Create(new CliIo(Stream.Null, TextWriter.Null, TextWriter.Null, false, t.Path)).Options.Where(o => !o.Hidden))
            Assert.Contains(option.Name, scanOptions);
        Assert.Contains("--include-suppressed", scanOptions);
        Assert.Contains("--help", scanOptions);
    }

    [Theory]
    [InlineData("zsh", "zsh", "-n")]
    [InlineData("fish", "fish", "--no-execute")]
    [InlineData("pwsh", "pwsh", null)]
    public void Other_shells_get_a_script_naming_every_command(string shell, string program, string? syntaxFlag)
    {
        var text = Script(shell);
        foreach (var command in new[] { "scan", "inspect", "inventory", "merge", "report", "tags", "rules", "completions", "include-suppressed", "sarif" })
            Assert.Contains(command, text, StringComparison.Ordinal);
        if (ProcessRunner.OnPath(program) is not { } exe) return; // syntax checked where the shell is installed
        using var t = new TempDir();
        var path = Path.Combine(t.Path, "driveraudit." + shell);
        File.WriteAllText(path, text);
        var check = syntaxFlag is null
            ? Run(exe, "-NoProfile", "-Command", $"$e = $null; [System.Management.Automation.Language.Parser]::ParseFile('{path}', [ref]$null, [ref]$e) | Out-Null; exit $e.Count")
            : Run(exe, syntaxFlag, path);
        Assert.True(check.ExitCode == 0, check.Stdout + check.Stderr);
        if (shell == "zsh")
        {
            // Sourced as the README says, it registers a completer for driveraudit.
            var loaded = Run(exe, "-f", "-c", $"source '{path}' && print -r -- ${{_comps[driveraudit]}}");
            Assert.True(loaded.ExitCode == 0 && loaded.Stdout.Trim().Length > 0, loaded.Stdout + loaded.Stderr);
        }
        if (shell == "fish")
        {
            // fish's own completion engine, given a command line: the values of --format.
            var offered = Run(exe, "--no-config", "-c", $"source '{path}'; complete -C 'driveraudit scan --format '");
            Assert.Equal(["json", "markdown", "sarif", "text"], offered.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')[0]).Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public void An_unknown_shell_is_a_usage_error()
    {
        var run = CliRunner.Run(RepoPaths.Root, "completions", "powershell");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("powershell", run.Stderr, StringComparison.Ordinal);
    }
}
