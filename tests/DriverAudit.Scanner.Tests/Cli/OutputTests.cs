using System.Diagnostics;
using System.Text.Json;
using DriverAudit.Scanner.Inputs;
using Xunit;

namespace DriverAudit.Scanner.Tests.Cli;

/// <summary>
/// What <c>-o</c> means, the same for every format: stdout, an atomic replace that keeps permissions, links
/// followed, special files written directly, folders and unwritable places refused before any input is read.
/// </summary>
public sealed class OutputTests
{
    private static readonly string Legacy = RepoPaths.Fixture("x64", "pool_legacy.sys");

    private static string Fifo(TempDir t, string name) => UnixFiles.Fifo(Path.Combine(t.Path, name));

    [Fact]
    public void Dash_is_stdout_and_creates_no_file()
    {
        using var t = new TempDir();
        var r = CliRunner.Run(t.Path, "scan", Legacy, "-o", "-", "--format", "sarif", "--fail-on", "none");
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith("{", r.Stdout);
        Assert.False(File.Exists(Path.Combine(t.Path, "-")));
    }

    [Theory]
    [InlineData("r.sarif", "\"$schema\"")]
    [InlineData("r.jsonl", "{\"kind\":\"result\"")]
    [InlineData("r.json", "{\"kind\":\"result\"")]
    [InlineData("r.md", "## DriverAudit")]
    [InlineData("r.txt", "warning DA1001 UntaggedPoolAllocation")]
    public void The_output_extension_picks_the_format(string name, string start)
    {
        using var t = new TempDir();
        var r = CliRunner.Run(t.Path, "scan", Legacy, "-o", name, "--fail-on", "none");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains(start, File.ReadAllText(Path.Combine(t.Path, name)));
        Assert.Empty(r.Stdout);
    }

    [Fact]
    public void Format_wins_over_the_extension_and_text_is_the_default_even_when_piped()
    {
        using var t = new TempDir();
        CliRunner.Run(t.Path, "scan", Legacy, "-o", "r.sarif", "--format", "json", "--fail-on", "none");
        Assert.StartsWith("{\"kind\":", File.ReadAllText(Path.Combine(t.Path, "r.sarif")));
        var piped = CliRunner.Run(t.Path, "scan", Legacy, "--fail-on", "none");
        Assert.Contains(": warning DA1001 UntaggedPoolAllocation:", piped.Stdout);
        Assert.DoesNotContain("\u001b[", piped.Stdout); // not a terminal: no colour
        var forced = CliRunner.Run(t.Path, "scan", Legacy, "--fail-on", "none", "--color", "always");
        Assert.Contains("\u001b[33mwarning\u001b[0m DA1001", forced.Stdout);
    }

    [Fact]
    public void A_regular_file_is_replaced_atomically_with_its_permissions()
    {
        if (OperatingSystem.IsWindows()) return; // Unix-only behaviour
        using var t = new TempDir();
        var path = t.File("report.sarif", "previous"u8.ToArray());
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        var r = CliRunner.Run(t.Path, "scan", Legacy, "-o", path, "--fail-on", "none");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("\"version\":\"2.1.0\"", File.ReadAllText(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(path));
        Assert.Equal(["report.sarif"], Directory.GetFiles(t.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void A_symbolic_link_stays_a_link_and_its_target_is_replaced()
    {
        using var t = new TempDir();
        var target = t.File("real/report.sarif", "previous"u8.ToArray());
        var link = Path.Combine(t.Path, "link.sarif");
        File.CreateSymbolicLink(link, Path.Combine("real", "report.sarif"));
        var r = CliRunner.Run(t.Path, "scan", Legacy, "-o", "link.sarif", "--fail-on", "none");
        Assert.Equal(0, r.ExitCode);
        Assert.NotNull(new FileInfo(link).LinkTarget);
        Assert.Contains("\"version\":\"2.1.0\"", File.ReadAllText(target));
        Assert.Equal(["link.sarif"], Directory.GetFiles(t.Path).Select(Path.GetFileName)); // no temporary beside the link
        Assert.Equal(["report.sarif"], Directory.GetFiles(Path.Combine(t.Path, "real")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_fifo_with_a_reader_is_written_directly_and_stays_a_fifo()
    {
        if (OperatingSystem.IsWindows()) return; // Unix-only behaviour
        using var t = new TempDir();
        var fifo = Fifo(t, "report.sarif");
        var reader = Task.Run(() => File.ReadAllText(fifo)); // blocks until the scan opens the FIFO for writing
        var r = CliRunner.Run(t.Path, "scan", Legacy, "-o", fifo, "--fail-on", "none");
        var finished = await Task.WhenAny(reader, Task.Delay(TimeSpan.FromSeconds(30))) == reader;
        if (!finished) using (File.OpenWrite(fifo)) { } // release the blocked reader before failing
        Assert.Equal(0, r.ExitCode);
        Assert.True(finished, "the reader got no end of file");
        using (var doc = JsonDocument.Parse(await reader))
            Assert.Equal("2.1.0", doc.RootElement.GetProperty("version").GetString());
        Assert.Equal(FileKind.Fifo, FileKinds.Of(fifo));
        Assert.Single(Directory.GetFileSystemEntries(t.Path));
    }

    [Fact]
    public async Task A_folder_is_refused_before_any_input_is_read()
    {
        if (OperatingSystem.IsWindows()) return; // Unix-only behaviour
        using var t = new TempDir();
        var folder = t.Dir("reports");
        // The paths come from a FIFO nobody writes: reading them would block. Refusing the output first never reads them.
        var paths = Fifo(t, "paths");
        var run = Task.Run(() => CliRunner.Run(t.Path, "scan", "--files-from", paths, "-o", folder));
        var finished = await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(30))) == run;
        if (!finished) using (File.OpenWrite(paths)) { } // release the blocked reader before failing
        Assert.True(finished, "the scan read its inputs before refusing the output");
        var r = await run;
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("is a folder", r.Stderr);
        Assert.Empty(Directory.GetFileSystemEntries(folder));
    }

    [Fact]
    public void An_unwritable_place_is_refused_with_exit_2()
    {
        using var t = new TempDir();
        var file = t.File("plain.txt", "x"u8.ToArray());
        // Under a regular file: no folder can be made there, whoever runs the test (root included).
        var underFile = CliRunner.Run(t.Path, "scan", Legacy, "-o", Path.Combine(file, "out.sarif"));
        Assert.Equal(2, underFile.ExitCode);
        Assert.Contains("not a folder", underFile.Stderr);

        if (OperatingSystem.IsLinux())
        {
            // A read-only parent that binds root too: /proc/self accepts no new files.
            var proc = CliRunner.Run(t.Path, "scan", Legacy, "-o", "/proc/self/driveraudit-test.sarif");
            Assert.Equal(2, proc.ExitCode);
            Assert.Contains("cannot write '/proc/self/driveraudit-test.sarif'", proc.Stderr);
            Assert.DoesNotContain("internal error", proc.Stderr);
        }
        if (!OperatingSystem.IsWindows() && Environment.UserName != "root")
        {
            var ro = t.Dir("ro");
            File.SetUnixFileMode(ro, UnixFileMode.UserRead | UnixFileMode.UserExecute);
            try
            {
                var r = CliRunner.Run(t.Path, "scan", Legacy, "-o", Path.Combine(ro, "out.sarif"));
                Assert.Equal(2, r.ExitCode);
            }
            finally { File.SetUnixFileMode(ro, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute); }
        }
    }

    [Theory]
    [InlineData("INT", 130)]
    [InlineData("TERM", 143)]
    public void A_signal_stops_the_scan_removes_temporaries_and_leaves_the_old_report(string signal, int expected)
    {
        if (OperatingSystem.IsWindows()) return; // Unix-only behaviour
        using var t = new TempDir();
        var report = t.File("out/report.sarif", "previous"u8.ToArray());
        var exe = Path.Combine(AppContext.BaseDirectory, "driveraudit");
        var start = new ProcessStartInfo(exe)
        {
            WorkingDirectory = t.Path,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in new[] { "scan", "--files-from", "-", "-o", report, "-j", "1" }) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        // One path, and stdin stays open: the scan is under way (its temporary exists) and waits for more paths.
        process.StandardInput.WriteLine(Legacy);
        process.StandardInput.Flush();
        var outDir = Path.GetDirectoryName(report)!;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (Directory.GetFiles(outDir, ".*.tmp").Length == 0 && !process.HasExited && DateTime.UtcNow < deadline) Thread.Sleep(20);
        Assert.False(process.HasExited, process.HasExited ? process.StandardError.ReadToEnd() : "");
        Assert.NotEmpty(Directory.GetFiles(outDir, ".*.tmp"));

        using (var kill = Process.Start("kill", ["-" + signal, process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) kill.WaitForExit();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(30)), "the scan did not stop");
        Assert.Equal(expected, process.ExitCode);
        Assert.Equal("previous", File.ReadAllText(report));
        Assert.Equal(["report.sarif"], Directory.GetFiles(outDir).Select(Path.GetFileName));
        Assert.Empty(Directory.GetFiles(Path.GetTempPath(), $"driveraudit-{process.Id}-*.tmp"));
        Assert.Contains("interrupted", process.StandardError.ReadToEnd());
    }
}
