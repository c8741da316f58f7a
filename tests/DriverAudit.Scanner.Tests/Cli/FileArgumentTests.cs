using DriverAudit.Scanner.Inputs;
using Xunit;

namespace DriverAudit.Scanner.Tests.Cli;

/// <summary>
/// Files named by options (rules, config, hash lists, baselines) are read only when they are regular files and
/// small enough: a FIFO, a device or a directory is exit 2 with a message, never a hang or an out-of-memory crash.
/// </summary>
public sealed class FileArgumentTests
{
    private const string Legacy = "tests/fixtures/bin/x64/pool_legacy.sys";

    public static TheoryData<string, string> Options => new()
    {
        { "--rules", "rule file" },
        { "--config", "config file" },
        { "--hash-list", "hash list" },
        { "--baseline", "baseline" },
    };

    private static string[] Args(string option, string path) =>
        ["scan", Legacy, "--format", "sarif", option, option == "--hash-list" ? "known-vulnerable=" + path : path];

    [Theory]
    [MemberData(nameof(Options))]
    public void A_fifo_is_refused_with_exit_2_instead_of_blocking(string option, string what)
    {
        if (OperatingSystem.IsWindows()) return;
        using var t = new TempDir();
        var fifo = UnixFiles.Fifo(Path.Combine(t.Path, "arg.yaml"));

        var run = CliRunner.Run(RepoPaths.Root, Args(option, fifo));

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("FIFO (named pipe), not a regular file", run.Stderr);
        Assert.Contains(what, run.Stderr);
        Assert.Equal("", run.Stdout);
    }

    [Theory]
    [MemberData(nameof(Options))]
    public void Dev_zero_is_refused_with_exit_2(string option, string what)
    {
        if (OperatingSystem.IsWindows()) return;
        var run = CliRunner.Run(RepoPaths.Root, Args(option, "/dev/zero"));

        Assert.Equal(2, run.ExitCode);
        Assert.Contains("/dev/zero", run.Stderr);
        Assert.Contains("character device", run.Stderr);
        Assert.Contains(what, run.Stderr);
    }

    [Theory]
    [InlineData("--config")]
    [InlineData("--hash-list")]
    [InlineData("--baseline")]
    public void A_directory_is_refused_with_exit_2(string option)
    {
        using var t = new TempDir();
        var run = CliRunner.Run(RepoPaths.Root, Args(option, t.Path));
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("is a directory, not a regular file", run.Stderr);
    }

    [Fact]
    public void A_fifo_inside_a_rules_folder_is_a_rule_error()
    {
        if (OperatingSystem.IsWindows()) return;
        using var t = new TempDir();
        UnixFiles.Fifo(Path.Combine(t.Path, "pipe.yaml"));
        var run = CliRunner.Run(RepoPaths.Root, "rules", "validate", t.Path);
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("pipe.yaml:1:1: the rule file is a FIFO", run.Stderr + run.Stdout);
    }

    [Fact]
    public void A_file_past_the_limit_is_refused_and_one_within_it_is_read_whole()
    {
        using var t = new TempDir();
        var big = t.File("big.csv", new byte[4097]);
        var error = Assert.Throws<ArgumentFileException>(() => ArgumentFile.ReadAllBytes(big, 4096, "hash list"));
        Assert.Equal($"hash list '{big}' is 4,097 bytes; at most 4,096 bytes are read.", error.Message);

        Assert.Equal(4097, ArgumentFile.ReadAllBytes(big, 4097, "hash list").Length);
        Assert.Equal("\u00e9t\u00e9", ArgumentFile.ReadAllText(t.File("bom.txt", [0xEF, 0xBB, 0xBF, 0xC3, 0xA9, 0x74, 0xC3, 0xA9]), 100, "rule file"));
    }

    [Fact]
    public void A_file_whose_size_the_system_does_not_report_is_read_to_its_end_within_the_limit()
    {
        if (!OperatingSystem.IsLinux()) return;
        // /proc files are regular but report size 0: the reader must not trust the size.
        var text = ArgumentFile.ReadAllText("/proc/self/status", 1 << 20, "config file");
        Assert.Contains("Name:", text);
        Assert.Throws<ArgumentFileException>(() => ArgumentFile.ReadAllBytes("/proc/self/status", 16, "config file"));
    }

    [Fact]
    public void The_limits_are_the_documented_ones()
    {
        Assert.Equal(16L << 20, ArgumentFile.MaxRuleFileBytes);
        Assert.Equal(16L << 20, ArgumentFile.MaxConfigBytes);
        Assert.Equal(64L << 20, ArgumentFile.MaxHashListBytes);
        Assert.Equal(256L << 20, ArgumentFile.MaxBaselineBytes);
        var readme = File.ReadAllText(Path.Combine(RepoPaths.Root, "README.md"));
        Assert.Contains("16 MiB", readme);
        Assert.Contains("64 MiB", readme);
        Assert.Contains("256 MiB", readme);
    }
}
