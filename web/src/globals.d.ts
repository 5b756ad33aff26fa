declare const __FIELDREPORT_VERSION__: string;
declare const __FIELDREPORT_RECORDER__: string;
