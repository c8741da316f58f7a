namespace DriverAudit.Scanner; static class Program { static int Main() => 0; }
