#include "services/clusters/clusters_service.h"
