using System.Buffers.Binary;
using DriverAudit.Scanner.Tests.TestSupport.Dumps;

// Usage: DumpBench <fixtures/bin/x64> <out dir> <big dump GiB>
// Writes small.dmp (an x64 complete dump holding a few modules, every page stored) and big.dmp: the same
// pages, but the run table also declares two huge runs of physical memory around them that the file holds
// as holes (a sparse file). Both dumps list the same modules, so a scan of either reads the same pages.
if (args.Length != 3) { Console.Error.WriteLine("usage: DumpBench <fixtures/bin/x64> <out dir> <big dump GiB>"); return 2; }
var fixtures = args[0];
var outDir = args[1];
var gib = long.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture);
Directory.CreateDirectory(outDir);

var w = new DumpWriter(DumpArch.X64);
byte[] Fixture(string name) => File.ReadAllBytes(Path.Combine(fixtures, name));
w.AddModule(@"\SystemRoot\system32\ntoskrnl.exe", 0xFFFFF80000200000, Fixture("kernel/ntoskrnl.exe"));
w.AddModule(@"\SystemRoot\system32\hal.dll", 0xFFFFF80000400000, Fixture("kernel/hal.dll"));
// Only drivers whose imports the fixture kernel exports (the loader simulation binds every slot).
string[] drivers = ["{2F4E1D6C-6B3A-4C1F-9E8D-7A1B2C3D4E5F}.sys", "pool_modern.sys", "pool_legacy.sys"];
var guid = w.AddModule(@"\SystemRoot\System32\drivers\" + drivers[0], 0xFFFFF80001000000, Fixture(drivers[0]));
for (var i = 1; i < drivers.Length; i++)
    w.AddModule(@"\SystemRoot\System32\drivers\" + drivers[i], 0xFFFFF80001000000 + (ulong)i * 0x10_0000, Fixture(drivers[i]));
LoaderSim.BindAll(w);
LoaderSim.ZeroSection(w, guid, "INIT");
var small = w.WriteFull();
File.WriteAllBytes(Path.Combine(outDir, "small.dmp"), small);

// big.dmp: runs = [hole run A] + the original runs + [hole run B]; pages are stored in run order.
const int HeaderSize = 0x2000, PageSize = 0x1000;
var header = small.AsSpan(0, HeaderSize).ToArray();
var runCount = (int)BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(0x88));
var runs = new List<(ulong Base, ulong Count)>();
for (var i = 0; i < runCount; i++)
    runs.Add((BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(0x98 + 16 * i)), BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(0xA0 + 16 * i))));
var holePages = (ulong)(gib << 30) / PageSize / 2;
var storedPages = (ulong)(small.Length - HeaderSize) / PageSize;
runs.Insert(0, (0x100_0000, holePages));
runs.Add((0x100_0000 + holePages, holePages));
BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(0x88), (uint)runs.Count);
var total = 0UL;
for (var i = 0; i < runs.Count; i++)
{
    BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(0x98 + 16 * i), runs[i].Base);
    BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(0xA0 + 16 * i), runs[i].Count);
    total += runs[i].Count;
}
BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(0x90), total);
BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(0xFA0), HeaderSize + total * PageSize);
using (var big = new FileStream(Path.Combine(outDir, "big.dmp"), FileMode.Create, FileAccess.Write))
{
    big.Write(header);
    big.Position = HeaderSize + (long)holePages * PageSize; // a hole: never written, no disk blocks
    big.Write(small.AsSpan(HeaderSize));
    big.SetLength(HeaderSize + (long)total * PageSize);
}
Console.WriteLine($"small.dmp {small.Length} bytes; big.dmp {HeaderSize + (long)total * PageSize} bytes ({runs.Count} runs, {storedPages} module/list pages stored, {total} pages declared); {w.Modules.Count} modules");
return 0;
