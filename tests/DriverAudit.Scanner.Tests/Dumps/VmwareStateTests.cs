using System.Text.Json;
using DriverAudit.Scanner.Dumps;
using DriverAudit.Scanner.Engine;
using Xunit;

namespace DriverAudit.Scanner.Tests.Dumps;

/// <summary>A VMware .vmem read with the CR3 saved in the .vmss/.vmsn beside it (docs/crash-dumps.md §7).</summary>
public sealed class VmwareStateTests
{
    private static DumpOpenResult Open(TempDir dir, byte[] vmem, byte[]? state, string stateName = "Windows 10 x64.vmss", string vmemName = "Windows 10 x64.vmem")
    {
        if (state is not null) dir.File(stateName, state);
        return KernelDump.TryOpen(dir.File(vmemName, vmem));
    }

    [Theory]
    [InlineData(false, "Windows 10 x64.vmss")]
    [InlineData(true, "Windows 10 x64.vmss")]
    [InlineData(false, "Windows 10 x64.vmsn")]
    public void The_saved_CR3_gives_the_root_when_the_image_has_no_self_map(bool crBlock, string stateName)
    {
        var w = RawImageTests.Scenario(DumpArch.X64);
        using var dir = new TempDir();
        // Without the self-map entry the search finds nothing: only the saved CR3 can locate the kernel.
        var vmem = w.WriteRaw(selfMap: false);
        Assert.Equal(DumpOpenError.NoKernelFound, Open(dir, vmem, null, vmemName: "alone.vmem").Error);

        var result = Open(dir, vmem, w.WriteVmss(crBlock: crBlock), stateName);
        Assert.True(result.Success, result.Message);
        using var dump = result.Dump!;
        Assert.Equal(w.Modules.Select(m => (m.FullPath, m.Base, m.Size)), dump.Modules.Select(m => (m.FullPath, m.Base, m.Size)));
        Assert.Empty(dump.Diagnostics);
        Assert.Equal($"page-table root: CR3 0x{w.DirectoryTableBase:X} of vCPU 0 in VMware saved state '{stateName}'", dump.LocatorNotes[0]);
    }

    [Fact]
    public void A_vCPU_caught_in_user_mode_is_passed_over_for_the_next()
    {
        var w = RawImageTests.Scenario(DumpArch.X64);
        using var dir = new TempDir();
        var userTable = w.AllocatePage() << 12; // an empty directory table, as KVA shadowing leaves in user mode
        var result = Open(dir, w.WriteRaw(selfMap: false), w.WriteVmss([userTable, w.DirectoryTableBase]));
        Assert.True(result.Success, result.Message);
        using var dump = result.Dump!;
        Assert.Equal(4, dump.Modules.Count);
        Assert.StartsWith($"page-table root: CR3 0x{w.DirectoryTableBase:X} of vCPU 1", dump.LocatorNotes[0]);
        Assert.Empty(dump.Diagnostics);
    }

    [Fact]
    public void An_x86_PAE_guest_is_read_through_its_saved_PDPT()
    {
        var w = RawImageTests.Scenario(DumpArch.X86Pae);
        using var dir = new TempDir();
        var result = Open(dir, w.WriteRaw(selfMap: false), w.WriteVmss(cr4: 0x6F8)); // CR4.PAE
        Assert.True(result.Success, result.Message);
        using var dump = result.Dump!;
        Assert.Equal(DumpMachine.X86, dump.Machine);
        Assert.True(dump.PaeEnabled);
        Assert.Equal(w.Modules.Select(m => (m.FullPath, m.Base)), dump.Modules.Select(m => (m.FullPath, m.Base)));
        Assert.StartsWith($"page-table root: CR3 0x{w.DirectoryTableBase:X} of vCPU 0 in VMware saved state 'Windows 10 x64.vmss' (x86 PAE)", dump.LocatorNotes[0]);
    }

    [Fact]
    public void A_wrong_saved_CR3_falls_back_to_the_search_with_a_diagnostic()
    {
        var w = RawImageTests.Scenario(DumpArch.X64);
        using var dir = new TempDir();
        var wrong = w.AllocatePage() << 12;
        var result = Open(dir, w.WriteRaw(0x1A3), w.WriteVmss([wrong]));
        Assert.True(result.Success, result.Message);
        using var dump = result.Dump!;
        Assert.Equal(4, dump.Modules.Count);
        Assert.StartsWith("page-table root: self-referencing PML4", dump.LocatorNotes[0]);
        var d = Assert.Single(dump.Diagnostics);
        Assert.Equal(DumpDiagnosticCodes.SavedState, d.Code);
        Assert.Contains($"The CR3 saved in 'Windows 10 x64.vmss' did not lead to ntoskrnl (CR3 0x{wrong:X} of vCPU 0", d.Message);
        Assert.Contains("found by searching the image instead", d.Message);
    }

    [Fact]
    public void A_wrong_saved_CR3_and_no_self_map_is_a_message_naming_both()
    {
        var w = RawImageTests.Scenario(DumpArch.X64);
        using var dir = new TempDir();
        var wrong = w.AllocatePage() << 12;
        var result = Open(dir, w.WriteRaw(selfMap: false), w.WriteVmss([wrong]));
        Assert.Equal(DumpOpenError.NoKernelFound, result.Error);
        Assert.Contains("no self-referencing PML4", result.Message);
        Assert.Contains($"The CR3 saved in 'Windows 10 x64.vmss' did not lead to ntoskrnl (CR3 0x{wrong:X}", result.Message);
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("huge-group-count")]
    [InlineData("group-outside")]
    [InlineData("huge-block")]
    [InlineData("no-cpu-group")]
    [InlineData("garbage-tags")]
    [InlineData("empty")]
    public void Hostile_saved_states_are_explained_and_the_search_still_runs(string what)
    {
        var w = RawImageTests.Scenario(DumpArch.X64);
        var vmss = w.WriteVmss();
        var cpuAt = (int)BitConverter.ToUInt64(vmss, 12 + 80 + 64);
        switch (what)
        {
            case "truncated": vmss = vmss[..(cpuAt + 40)]; break;
            case "huge-group-count": BitConverter.GetBytes(0xFFFF_FFFFu).CopyTo(vmss, 8); BitConverter.GetBytes(0x7FFF_FFFF_0000UL).CopyTo(vmss, 12 + 80 + 64); break;
            case "group-outside": BitConverter.GetBytes(0x7FFF_FFFF_0000UL).CopyTo(vmss, 12 + 80 + 64); break;
            case "huge-block": // the first block ("gpregs") claims 2^62 bytes
                var gp = vmss.AsSpan(cpuAt).IndexOf("gpregs"u8) + cpuAt;
                BitConverter.GetBytes(1UL << 62).CopyTo(vmss, gp + 6 + 4);
                break;
            case "no-cpu-group": "cpx"u8.CopyTo(vmss.AsSpan(12 + 80)); break;
            case "garbage-tags": new Random(13).NextBytes(vmss.AsSpan(cpuAt)); break;
            case "empty": vmss = []; break;
        }
        using var dir = new TempDir();
        var result = Open(dir, w.WriteRaw(), vmss);
        Assert.True(result.Success, result.Message);
        using var dump = result.Dump!;
        Assert.Equal(4, dump.Modules.Count);
        Assert.StartsWith("page-table root: self-referencing PML4", dump.LocatorNotes[0]);
        var d = Assert.Single(dump.Diagnostics);
        Assert.Equal(DumpDiagnosticCodes.SavedState, d.Code);
        Assert.Contains("VMware saved state 'Windows 10 x64.vmss'", d.Message);
    }

    [Fact]
    public void Hostile_tag_streams_are_bounded_by_the_file()
    {
        // 4 MiB of zero-size blocks (each tag advances the cursor by its header only): read to the end, no CR3.
        var body = new List<byte>();
        while (body.Count < 4 << 20) body.AddRange([0x3F, 0x01, (byte)'C', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        var vmss = new byte[12 + 80 + body.Count];
        BitConverter.GetBytes(0xBED2BED2u).CopyTo(vmss, 0);
        BitConverter.GetBytes(1u).CopyTo(vmss, 8);
        "cpu"u8.CopyTo(vmss.AsSpan(12));
        BitConverter.GetBytes(92UL).CopyTo(vmss, 12 + 64);
        body.CopyTo(vmss, 92);
        using var dir = new TempDir();
        var state = dir.File("x.vmss", vmss);
        dir.File("x.vmem", RawImageTests.Scenario(DumpArch.X64).WriteRaw());
        var read = VmwareCheckpoint.ReadBeside(Path.Combine(dir.Path, "x.vmem"))!;
        Assert.Equal(state, read.Path);
        Assert.Empty(read.Cpus);
        Assert.NotNull(read.Problem);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_state_file_given_alone_points_at_the_vmem(bool vmemBeside)
    {
        var w = RawImageTests.Scenario(DumpArch.X64);
        using var dir = new TempDir();
        dir.File("Windows 10 x64-Snapshot1.vmsn", w.WriteVmss());
        if (vmemBeside) dir.File("Windows 10 x64-Snapshot1.vmem", w.WriteRaw());
        var outcome = CliRunner.Run(dir.Path, "scan", "Windows 10 x64-Snapshot1.vmsn", "--format", "json", "--no-progress");
        Assert.Equal(0, outcome.ExitCode);
        var notes = outcome.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(e => e.GetProperty("kind").GetString() == "notification").ToList();
        var n = Assert.Single(notes);
        Assert.Equal(NotificationCodes.DumpUnreadable, n.GetProperty("code").GetString());
        Assert.Equal("note", n.GetProperty("level").GetString());
        var message = n.GetProperty("message").GetString()!;
        Assert.Contains("holds the virtual CPUs' registers, not the memory", message);
        Assert.Contains(vmemBeside ? "Scan 'Windows 10 x64-Snapshot1.vmem' beside it" : "no .vmem was found beside this one", message);
    }

    [Fact]
    public void Scanning_the_vmem_gives_the_findings_of_a_complete_dump_and_inspect_names_the_state()
    {
        var w = RawImageTests.Scenario(DumpArch.X64);
        using var dir = new TempDir();
        dir.File("vm.vmem", w.WriteRaw(selfMap: false));
        dir.File("vm.vmss", w.WriteVmss());
        dir.File("full.dmp", w.WriteFull());
        var inspect = CliRunner.Run(dir.Path, "inspect", "vm.vmem");
        Assert.Equal(0, inspect.ExitCode);
        Assert.Contains($"located: page-table root: CR3 0x{w.DirectoryTableBase:X} of vCPU 0 in VMware saved state 'vm.vmss'", inspect.Stdout);
        var vmem = CliRunner.ScanResultsByModule(dir.Path, "vm.vmem");
        Assert.Equal(CliRunner.ScanResultsByModule(dir.Path, "full.dmp"), vmem);
        Assert.Contains("DA7001 " + FixtureDumpScenario.GuidName, vmem);
    }
}
