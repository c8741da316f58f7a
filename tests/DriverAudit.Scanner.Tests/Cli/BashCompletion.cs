using Xunit;

namespace DriverAudit.Scanner.Tests.Cli;

/// <summary>The generated bash completion script, run in bash with the words a user would have typed.</summary>
internal static class BashCompletion
{
    /// <summary>Writes <c>driveraudit completions bash</c> into <paramref name="folder"/>; returns the script's path.</summary>
    public static string WriteScript(TempDir folder)
    {
        var run = CliRunner.Run(RepoPaths.Root, "completions", "bash");
        Assert.Equal(0, run.ExitCode);
        var script = Path.Combine(folder.Path, "completion.bash");
        File.WriteAllText(script, run.Stdout);
        return script;
    }

    /// <summary>What bash offers after <paramref name="words"/> (the last word is the one being completed), in the script's order.</summary>
    public static string[] Complete(string scriptPath, params string[] words)
    {
        var array = string.Join(' ', words.Select(w => "'" + w.Replace("'", "'\\''") + "'"));
        var run = ProcessRunner.Run("bash", ["--noprofile", "--norc", "-c",
            $"source '{scriptPath}' && COMP_WORDS=({array}) && COMP_CWORD={words.Length - 1} && _driveraudit && printf '%s\\n' \"${{COMPREPLY[@]}}\""]);
        Assert.True(run.ExitCode == 0, run.Stderr);
        return run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }
}
