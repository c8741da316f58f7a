namespace DriverAudit.TestSupport.Dumps;

/// <summary>
/// The README's MEMORY.DMP and DumpBench's small.dmp: an x64 complete dump of the fixture kernel, HAL and three drivers
/// (the GUID-named one with its INIT section zeroed, as the loader discards it), every IAT slot bound.
/// </summary>
public static class SmallFixtureDump
{
    /// <param name="x64Fixtures">tests/fixtures/bin/x64.</param>
    public static byte[] Write(string x64Fixtures) => Write(x64Fixtures, out _);

    public static byte[] Write(string x64Fixtures, out DumpWriter writer)
    {
        var w = writer = new DumpWriter(DumpArch.X64);
        byte[] Fixture(string name) => File.ReadAllBytes(Path.Combine(x64Fixtures, name));
        w.AddModule(@"\SystemRoot\system32\ntoskrnl.exe", 0xFFFFF80000200000, Fixture("kernel/ntoskrnl.exe"));
        w.AddModule(@"\SystemRoot\system32\hal.dll", 0xFFFFF80000400000, Fixture("kernel/hal.dll"));
        // Only drivers whose imports the fixture kernel exports (the loader simulation binds every slot).
        string[] drivers = ["{2F4E1D6C-6B3A-4C1F-9E8D-7A1B2C3D4E5F}.sys", "pool_modern.sys", "pool_legacy.sys"];
        var guid = w.AddModule(@"\SystemRoot\System32\drivers\" + drivers[0], 0xFFFFF80001000000, Fixture(drivers[0]));
        for (var i = 1; i < drivers.Length; i++)
            w.AddModule(@"\SystemRoot\System32\drivers\" + drivers[i], 0xFFFFF80001000000 + (ulong)i * 0x10_0000, Fixture(drivers[i]));
        LoaderSim.BindAll(w);
        LoaderSim.ZeroSection(w, guid, "INIT");
        return w.WriteFull();
    }
}
