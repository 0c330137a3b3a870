import type { Metadata } from "next";

import { AdminConsole } from "@/components/admin/admin-console";

export const metadata: Metadata = { title: "Operations" };

export default function AdminPage() {
  return <AdminConsole />;
}
